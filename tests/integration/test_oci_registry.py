"""The `oci` source against the real CNCF distribution registry (Debian's docker-registry).

Images are pushed over the registry's HTTP API with chosen `created` times in
both manifest formats and as multi-arch indexes; the source must read them
back exactly, the resolver must choose by them, and a refresh must fetch only
what is new.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from harness.builders import argo_pod, review_of, utc
from harness.dockerregistry import Pushed, Pusher, Registry, running_registry
from harness.ports import free_port
from harness.servers import example_config, running_server
from tests.support.fakes import FakeCommits, FakeEnrollments
from tests.support.kube import apply_response
from webhook import certs
from webhook.admission.resolver import ConfigRepo, ImageTarget, LookupFailed, Resolver
from webhook.config import CacheConfig, OciSource
from webhook.core.pinning import Image, ImageRule
from webhook.sources import SourceError
from webhook.sources.cached import CachedImageHistory
from webhook.sources.oci import OciImages

CACHE = CacheConfig()  # the resolver takes real sources only behind their cache, as wired

_names = itertools.count()


@dataclass
class History:
    """A repository pushed with a known history (times in UTC)."""

    repository: str
    pusher: Pusher
    v1_oci: Pushed
    v2_docker: Pushed
    breaking: Pushed
    amd64: Pushed
    arm64: Pushed
    v4_index: Pushed
    ppc64: Pushed
    v5_list: Pushed


def fresh_repository(registry: Registry) -> tuple[str, Pusher]:
    name = f"moz-fx-data-experiments/jetstream-{next(_names)}"
    return f"127.0.0.1/{name}", Pusher(registry.url, name)


def oci_source(registry: Registry, repository: str, **keys: object) -> OciImages:
    return OciImages(repository, OciSource(type="oci", endpoint=registry.url, **keys))  # type: ignore[arg-type]


@pytest.fixture
def history(docker_registry: Registry) -> History:
    repository, push = fresh_repository(docker_registry)
    v1 = push.image("v1", "2023-01-01T13:00:00Z", ["v1"])
    v2 = push.image("v2", "2023-03-01T13:00:00.123456789Z", ["v2", "latest"], docker=True)
    # Reproducible builds set `created` to the epoch; the annotation says when.
    breaking = push.image(
        "v3", "1970-01-01T00:00:00Z", ["v3", "breaking"], annotated="2024-02-20T00:00:00Z"
    )
    amd64 = push.image("v4-amd64", "2024-06-09T00:00:00Z", architecture="amd64")
    arm64 = push.image("v4-arm64", "2024-06-10T00:00:00Z", architecture="arm64")
    v4 = push.index([amd64, arm64], ["v4"])
    ppc64 = push.image("v5-ppc64", "2024-07-01T00:00:00Z", docker=True, architecture="ppc64le")
    v5 = push.index([ppc64], ["v5"], docker=True, annotated="2024-07-11T00:00:00+02:00")
    return History(repository, push, v1, v2, breaking, amd64, arm64, v4, ppc64, v5)


def test_reads_every_format_with_its_time(docker_registry: Registry, history: History) -> None:
    source = oci_source(docker_registry, history.repository)
    assert source.name == f"oci {history.repository}"
    images = {image.digest: image for image in source.images()}
    expected = [
        Image(history.v1_oci.digest, utc("2023-01-01T13:00:00Z"), frozenset({"v1"})),
        Image(history.v2_docker.digest, utc("2023-03-01T13:00:00.123456Z"),
              frozenset({"v2", "latest"})),
        Image(history.breaking.digest, utc("2024-02-20T00:00:00Z"),
              frozenset({"v3", "breaking"})),
        # An index without annotation takes its newest platform's time; the
        # platforms are listed as index children with the index's time.
        Image(history.v4_index.digest, utc("2024-06-10T00:00:00Z"), frozenset({"v4"})),
        Image(history.amd64.digest, utc("2024-06-10T00:00:00Z"), index_child=True),
        Image(history.arm64.digest, utc("2024-06-10T00:00:00Z"), index_child=True),
        Image(history.v5_list.digest, utc("2024-07-10T22:00:00Z"), frozenset({"v5"})),
        Image(history.ppc64.digest, utc("2024-07-10T22:00:00Z"), index_child=True),
    ]  # fmt: skip
    assert images == {image.digest: image for image in expected}
    assert all(image.uploaded.utcoffset() is not None for image in images.values())


def test_a_tagged_platform_manifest_is_a_candidate(
    docker_registry: Registry, history: History
) -> None:
    history.pusher.manifest_tag(history.arm64, "arm64-only")
    source = oci_source(docker_registry, history.repository)
    arm64 = next(i for i in source.images() if i.digest == history.arm64.digest)
    assert arm64 == Image(
        history.arm64.digest, utc("2024-06-10T00:00:00Z"), frozenset({"arm64-only"})
    )


def resolver_over(
    source: OciImages, enrolled: dict[str, datetime | None], breaking_tag: str | None = None
) -> Resolver:
    return Resolver(
        [ImageTarget(source_repository(source), breaking_tag, CachedImageHistory(source, CACHE))],
        FakeEnrollments(enrolled=enrolled),
        [ConfigRepo("metric-hub", "METRIC_HUB_SHA", FakeCommits())],
        now=lambda: utc("2026-01-01T00:00:00Z"),
    )


def source_repository(source: OciImages) -> str:
    return source.name.removeprefix("oci ")


@pytest.mark.parametrize(
    ("enrolled", "breaking_tag", "chosen", "rule"),
    [
        ("2022-06-01T00:00:00Z", None, "v1_oci", ImageRule.OLDEST),
        ("2023-02-01T00:00:00Z", None, "v1_oci", ImageRule.AT_OR_BEFORE),
        ("2023-03-01T13:00:00.123456Z", None, "v2_docker", ImageRule.AT_OR_BEFORE),
        # Enrolled before the breaking release: moved up to it.
        ("2023-02-01T00:00:00Z", "breaking", "breaking", ImageRule.BREAKING),
        ("2023-12-01T00:00:00Z", "breaking", "breaking", ImageRule.BREAKING),
        # The index and its children share a time: the index, never a child.
        ("2024-06-10T00:00:00Z", "breaking", "v4_index", ImageRule.AT_OR_BEFORE),
        ("2024-06-30T00:00:00Z", None, "v4_index", ImageRule.AT_OR_BEFORE),
        ("2025-01-01T00:00:00Z", "breaking", "v5_list", ImageRule.AT_OR_BEFORE),
        (None, "breaking", "v5_list", ImageRule.AT_OR_BEFORE),
    ],
)
def test_resolution_through_the_real_registry(
    docker_registry: Registry, history: History, enrolled: str | None,
    breaking_tag: str | None, chosen: str, rule: ImageRule,
) -> None:  # fmt: skip
    source = oci_source(docker_registry, history.repository)
    enrolled_at = utc(enrolled) if enrolled else None
    resolver = resolver_over(source, {"my-experiment": enrolled_at}, breaking_tag)
    decision = resolver.decide(resolver.facts_for_slug("my-experiment"))
    choice = decision.choices[history.repository]
    assert choice.image.digest == getattr(history, chosen).digest
    assert not choice.image.index_child
    assert choice.rule == rule


@dataclass
class Counter:
    paths: list[str]

    def __call__(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        self.paths.append(urlsplit(response.url).path)

    def count(self, part: str) -> int:
        return sum(part in path for path in self.paths)


@pytest.fixture
def counted(docker_registry: Registry, history: History) -> tuple[OciImages, Counter]:
    source = oci_source(docker_registry, history.repository)
    counter = Counter([])
    source.registry.http.session.hooks["response"].append(counter)
    return source, counter


def test_a_refresh_fetches_only_what_is_new(
    counted: tuple[OciImages, Counter], history: History
) -> None:
    source, counter = counted
    first = {i.digest: i for i in source.images()}
    # Configs of v1, v2 and the two v4 platforms; v3 and v5 carry the annotation.
    assert counter.count("/blobs/") == 4
    tags = 7
    counter.paths.clear()
    assert {i.digest: i for i in source.images()} == first
    assert counter.count("/blobs/") == 0
    assert counter.count("/manifests/") == tags
    assert counter.count("/tags/list") == 1

    # A moved tag and a new image: one new config blob, the rest remembered.
    history.pusher.manifest_tag(history.v1_oci, "latest")
    v6 = history.pusher.image("v6", "2025-05-05T00:00:00Z", ["v6"])
    counter.paths.clear()
    third = {i.digest: i for i in source.images()}
    assert counter.count("/blobs/") == 1
    assert third[v6.digest].uploaded == utc("2025-05-05T00:00:00Z")
    assert third[history.v1_oci.digest].tags == frozenset({"v1", "latest"})
    assert third[history.v2_docker.digest].tags == frozenset({"v2"})


def test_missing_created_time_names_the_tag(docker_registry: Registry) -> None:
    repository, push = fresh_repository(docker_registry)
    push.image("timeless", None, ["timeless"])
    with pytest.raises(SourceError, match=r"tag 'timeless' \(sha256:.*neither the annotation"):
        oci_source(docker_registry, repository).images()


def test_bad_created_time_names_the_field(docker_registry: Registry) -> None:
    repository, push = fresh_repository(docker_registry)
    push.image("garbled", "last tuesday", ["garbled"])
    with pytest.raises(SourceError, match="config created: expected an RFC 3339 time") as caught:
        oci_source(docker_registry, repository).images()
    assert caught.value.source == f"oci {repository}"
    assert "malformed answer from http://127.0.0.1:" in caught.value.cause


def test_unknown_repository_is_a_source_error(docker_registry: Registry) -> None:
    source = oci_source(docker_registry, "127.0.0.1/no/such-repository")
    with pytest.raises(SourceError, match=r"HTTP 404 from http://127\.0\.0\.1:") as caught:
        source.images()
    assert caught.value.source == "oci 127.0.0.1/no/such-repository"


def test_resolver_names_the_source_when_the_registry_is_down() -> None:
    port = free_port()
    source = OciImages("127.0.0.1/x/y", OciSource(type="oci", endpoint=f"http://127.0.0.1:{port}"))
    resolver = resolver_over(source, {"my-experiment": utc("2024-01-01T00:00:00Z")})
    with pytest.raises(LookupFailed, match=r"oci 127\.0\.0\.1/x/y failed: cannot connect"):
        resolver.decide(resolver.facts_for_slug("my-experiment"))


def test_the_children_would_win_without_the_index_rule(history: History) -> None:
    """Guards the index row above: a child's digest sorts after the index's."""
    assert max(history.amd64.digest, history.arm64.digest) > history.v4_index.digest


def test_the_webhook_pins_from_the_real_registry(docker_registry: Registry, tmp_path: Path) -> None:
    """The whole path: config `type: oci` -> gunicorn+TLS webhook -> real registry -> patch."""
    repository, push = fresh_repository(docker_registry)
    repository = repository.replace("127.0.0.1", docker_registry.url.removeprefix("http://"))
    before = push.image("before", "2022-12-01T00:00:00Z", ["v1"])
    push.image("after", "2023-06-01T00:00:00Z", ["v2", "latest"])
    config = example_config(tmp_path)
    config["images"] = [
        {"repository": repository, "history": {"type": "oci", "endpoint": docker_registry.url}}
    ]
    with running_server(tmp_path, config) as server:
        pod = argo_pod("my-experiment", image_ref=f"{repository}:latest")  # enrolled 2023-01-01
        answer = server.post_review(review_of(pod)).json()
        assert answer["response"]["allowed"], answer
        patched = apply_response(pod, answer)
        main = next(c for c in patched["spec"]["containers"] if c["name"] == "main")
        assert main["image"] == f"{repository}@{before.digest}"
        # The registry down: refused with 503 naming the source, and the server keeps serving.
        broken = copy.deepcopy(config)
        broken["images"][0]["history"]["endpoint"] = f"http://127.0.0.1:{free_port()}"
    with running_server(tmp_path / "broken", broken) as server:
        refused = server.post_review(review_of(pod)).json()["response"]
        assert not refused["allowed"]
        assert refused["status"]["code"] == 503
        assert f"oci {repository}" in refused["status"]["message"]
        assert "cannot connect" in refused["status"]["message"]
        assert server.session.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_a_private_ca_is_trusted_only_through_ca_file(tmp_path: Path) -> None:
    """A registry whose certificate a private CA signs: `caFile` makes that one source
    trust it; without it the certificate is refused, never skipped."""
    bundle = certs.issue(["localhost"], ["127.0.0.1"])
    certs.write(bundle, tmp_path / "tls")
    tls = tmp_path / "tls"
    pair = (tls / certs.CERT_FILE, tls / certs.KEY_FILE, tls / certs.CA_FILE)
    with running_registry(tmp_path / "registry", tls=pair) as registry:
        assert registry.url.startswith("https://")
        name = "moz-fx-data-experiments/jetstream"
        pushed = Pusher(registry.url, name, registry.ca_file).image(
            "private", "2024-01-01T00:00:00Z", ["v1"]
        )
        endpoint = OciSource(type="oci", endpoint=registry.url, ca_file=registry.ca_file)
        [image] = OciImages(f"127.0.0.1/{name}", endpoint).images()
        assert image.digest == pushed.digest
        untrusted = OciImages(f"127.0.0.1/{name}", OciSource(type="oci", endpoint=registry.url))
        with pytest.raises(SourceError, match="certificate is not trusted"):
            untrusted.images()
