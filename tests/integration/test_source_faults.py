"""Every remote source meets the same faults the same way: one test per fault, over the sources.

A lookup whose backend refuses the connection, answers too late, answers 5xx or
403, or answers something that is not JSON raises a `SourceError` that names the source
and the cause, never echoes the answer's body or a credential, and is raised
after one request (a retry would outlast the admission deadline). Each source
runs its real client (requests, google-cloud-bigquery, kubernetes) against its
stand-in on loopback, with real credentials where it has them (a Google token
from the token stand-in, a GitHub token file). What only one source can get
wrong (its own answer's shape, its auth challenge) stays in that source's file;
the fault matrix (test_fault_matrix.py) takes the same faults through the
admission.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.builders import commit, utc
from harness.ports import free_port
from harness.standins.apiserver import api_server, write_kubeconfig
from harness.standins.artifactregistry import (
    IMAGE,
    LOCATION,
    PROJECT,
    REPOSITORY,
    ArtifactRegistryStandIn,
)
from harness.standins.base import Reply, Route, StandInServer, json_reply, serving
from harness.standins.bigquery import BigQueryStandIn
from harness.standins.github import GithubStandIn
from harness.standins.google import GoogleStandIn, use_service_account
from harness.standins.registry import RegistryStandIn
from webhook import certs
from webhook.config import ArtifactRegistrySource, BigQuerySource, GcrSource, OciSource
from webhook.core.datasets import Dataset
from webhook.kube.client import api_client
from webhook.kube.overrides import KubeOverrides
from webhook.sources import SourceError
from webhook.sources.artifactregistry import ArtifactRegistryImages
from webhook.sources.bigquery import BigQueryEnrollments
from webhook.sources.gcr import GcrImages
from webhook.sources.github import GithubConfigHistory
from webhook.sources.http import HttpClient
from webhook.sources.oci import OciImages

TIMEOUT = 0.3
# In every faulty body: an answer is never echoed into an error (a body may hold a token,
# and Google's access tokens start with ya29).
SECRET_IN_BODY = "ya29.secret-token-in-body"
NEVER_SHOWN = ("ya29", "secret-token-in-body")
GITHUB_TOKEN = "ghp_s3cretT0ken"

Lookup = Callable[[], object]


@dataclass(frozen=True)
class Backend:
    """A source pointed at a backend: the lookup, the backend's URL, its stand-in (none
    when the port is closed) and what must never appear in an error."""

    lookup: Lookup
    url: str
    stand_in: StandInServer | None
    secrets: tuple[str, ...]


# A source's setup: (tmp_path, monkeypatch, fault or None for a closed port) -> Backend.
Setup = Callable[[Path, pytest.MonkeyPatch, Reply | None], AbstractContextManager[Backend]]


@contextmanager
def standing_in(route: Route, fault: Reply | None) -> Iterator[tuple[str, StandInServer | None]]:
    """The stand-in answering `fault` to every request; a closed port when no fault."""
    if fault is None:
        yield f"http://127.0.0.1:{free_port()}", None
        return
    with serving(route) as stand_in:
        stand_in.fault = fault
        yield stand_in.url, stand_in


@contextmanager
def google_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GoogleStandIn]:
    """Application Default Credentials whose tokens come from the token stand-in."""
    google = GoogleStandIn()
    with serving(google) as token_endpoint:
        use_service_account(monkeypatch, tmp_path, f"{token_endpoint.url}/token")
        yield google


@contextmanager
def http_client(tmp: Path, mp: pytest.MonkeyPatch, fault: Reply | None) -> Iterator[Backend]:
    with standing_in(lambda _: json_reply({}), fault) as (url, stand_in):
        client = HttpClient(
            "test source", url, TIMEOUT, auth=lambda: {"Authorization": "Bearer s3cret"}
        )
        yield Backend(lambda: client.get_json("/anything"), url, stand_in, ("s3cret",))


@contextmanager
def bigquery(tmp: Path, mp: pytest.MonkeyPatch, fault: Reply | None) -> Iterator[Backend]:
    with standing_in(BigQueryStandIn(), fault) as (url, stand_in):
        source = BigQueryEnrollments(
            BigQuerySource("bigquery", PROJECT, "mozanalysis", "anonymous", url, TIMEOUT)
        )
        dataset = Dataset(PROJECT, "mozanalysis")
        yield Backend(lambda: source.enrolled_at("my-experiment", dataset), url, stand_in, ())


@contextmanager
def artifactregistry(tmp: Path, mp: pytest.MonkeyPatch, fault: Reply | None) -> Iterator[Backend]:
    route = ArtifactRegistryStandIn()
    with google_tokens(tmp, mp) as google, standing_in(route, fault) as (url, stand_in):
        source = ArtifactRegistryImages(
            ArtifactRegistrySource(
                "artifactregistry", PROJECT, LOCATION, REPOSITORY, IMAGE,
                endpoint=url, docker_endpoint=url, timeout_seconds=TIMEOUT,
            )
        )  # fmt: skip
        yield Backend(source.images, url, stand_in, ())
        assert google.issued, "the source sent a Google token"


@contextmanager
def gcr(tmp: Path, mp: pytest.MonkeyPatch, fault: Reply | None) -> Iterator[Backend]:
    registry = RegistryStandIn(f"{PROJECT}/{IMAGE}", google=True)
    with google_tokens(tmp, mp), standing_in(registry, fault) as (url, stand_in):
        source = GcrImages(
            f"gcr.io/{PROJECT}/{IMAGE}", GcrSource("gcr", endpoint=url, timeout_seconds=TIMEOUT)
        )
        # The registry is asked first; its token challenge would bring in the Google token.
        yield Backend(source.images, url, stand_in, ())


@contextmanager
def oci(tmp: Path, mp: pytest.MonkeyPatch, fault: Reply | None) -> Iterator[Backend]:
    with standing_in(RegistryStandIn("team/app"), fault) as (url, stand_in):
        source = OciImages(
            "127.0.0.1/team/app", OciSource("oci", endpoint=url, timeout_seconds=TIMEOUT)
        )
        yield Backend(source.images, url, stand_in, ())


@contextmanager
def github(tmp: Path, mp: pytest.MonkeyPatch, fault: Reply | None) -> Iterator[Backend]:
    token_file = tmp / "github-token"
    token_file.write_text(GITHUB_TOKEN)
    route = GithubStandIn([commit("c1", "2023-01-01T00:00:00Z")])
    with standing_in(route, fault) as (url, stand_in):
        route.base = url
        source = GithubConfigHistory(
            "mozilla/metric-hub", "main", url, TIMEOUT, token_file=token_file
        )
        lookup = lambda: source.sha_at(utc("2023-02-01T00:00:00Z"))  # noqa: E731
        yield Backend(lookup, url, stand_in, (GITHUB_TOKEN,))


@contextmanager
def kubernetes(tmp: Path, mp: pytest.MonkeyPatch, fault: Reply | None) -> Iterator[Backend]:
    if fault is None:
        url = f"https://127.0.0.1:{free_port()}"
        kubeconfig = write_kubeconfig(tmp / "k.yaml", url, certs.issue(["localhost"]).ca_pem)
        source = KubeOverrides(api_client(kubeconfig), timeout=TIMEOUT)
        yield Backend(lambda: source.workflow_pin("argo", "wf"), url, None, ())
        return
    with api_server(tmp) as api:
        api.stand_in.fault = fault
        source = KubeOverrides(api_client(api.kubeconfig), timeout=TIMEOUT)
        yield Backend(lambda: source.workflow_pin("argo", "wf"), api.stand_in.url, api.stand_in, ())


@dataclass(frozen=True)
class Source:
    """One remote source: its setup, its name in errors and how it words each fault
    (templates of the whole cause; `{url}` is the backend's, `{code}` the HTTP status)."""

    setup: Setup
    name: str
    refused: str = "cannot connect to {url}"
    timeout: str = "timed out after {timeout}s"
    status: str = "HTTP {code} from {url}"
    malformed: str = "malformed answer from {url}: not JSON"
    forbidden: str = "HTTP 403 from {url}: not authorized (check the credentials and their roles)"


TABLE = f"tables.get {PROJECT}.mozanalysis.enrollments_my_experiment"
KUBE_API = "the Kubernetes API at {url}"
SOURCES = {
    "http client": Source(http_client, "test source"),
    "bigquery": Source(
        bigquery, "bigquery", f"{TABLE}: cannot connect", f"{TABLE}: timed out after {{timeout}}s",
        f"{TABLE}: HTTP {{code}}", f"{TABLE}: malformed answer",
        f"{TABLE}: HTTP 403: not authorized (needs BigQuery metadata viewer)",
    ),
    "artifactregistry": Source(
        artifactregistry, f"artifactregistry {PROJECT}/{REPOSITORY}/{IMAGE}"
    ),
    "gcr": Source(gcr, f"gcr gcr.io/{PROJECT}/{IMAGE}"),
    "oci": Source(oci, "oci 127.0.0.1/team/app"),
    "github": Source(github, "github mozilla/metric-hub@main"),
    "kubernetes": Source(
        kubernetes, "Kubernetes API (Workflows)", f"cannot connect to {KUBE_API}",
        f"{KUBE_API} timed out after {{timeout}}s", f"HTTP {{code}} from {KUBE_API}",
        f"malformed answer from {KUBE_API}",
        f"HTTP 403 from {KUBE_API}: not authorized (check the service account's RBAC)",
    ),
}  # fmt: skip


def fails(
    source: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: Reply | None
) -> tuple[str, str]:
    """Run the source's lookup against the fault and check what every fault shares: the
    source named first, no secret, one request. The cause, and the backend's URL."""
    with (
        source.setup(tmp_path, monkeypatch, fault) as backend,
        pytest.raises(SourceError) as caught,
    ):
        backend.lookup()
    error = caught.value
    print(f"{error}")
    assert error.source == source.name
    assert str(error) == f"{source.name}: {error.cause}"
    for secret in (*NEVER_SHOWN, *backend.secrets):
        assert secret not in str(error)
    if backend.stand_in is not None:
        assert len(backend.stand_in.calls()) == 1, "no retry: it would outlast the deadline"
    return error.cause, backend.url


@pytest.mark.parametrize("name", list(SOURCES))
def test_connection_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    source = SOURCES[name]
    cause, url = fails(source, tmp_path, monkeypatch, None)
    assert cause == source.refused.format(url=url)


@pytest.mark.parametrize("name", list(SOURCES))
def test_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    source = SOURCES[name]
    late = Reply(200, b"{}", {"Content-Type": "application/json"}, delay=1.0)
    cause, url = fails(source, tmp_path, monkeypatch, late)
    assert cause == source.timeout.format(url=url, timeout=TIMEOUT)


@pytest.mark.parametrize("code", [500, 502, 503])
@pytest.mark.parametrize("name", list(SOURCES))
def test_server_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, code: int
) -> None:
    source = SOURCES[name]
    answer = json_reply({"error": {"code": code, "message": SECRET_IN_BODY}}, code)
    cause, url = fails(source, tmp_path, monkeypatch, answer)
    assert cause == source.status.format(url=url, code=code)


@pytest.mark.parametrize("name", list(SOURCES))
def test_malformed_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    source = SOURCES[name]
    garbage = Reply(
        200, f"{SECRET_IN_BODY} {{not json".encode(), {"Content-Type": "application/json"}
    )
    cause, url = fails(source, tmp_path, monkeypatch, garbage)
    assert cause == source.malformed.format(url=url)


@pytest.mark.parametrize("name", list(SOURCES))
def test_forbidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    source = SOURCES[name]
    answer = json_reply({"error": {"code": 403, "message": SECRET_IN_BODY}}, 403)
    cause, url = fails(source, tmp_path, monkeypatch, answer)
    assert cause == source.forbidden.format(url=url)
