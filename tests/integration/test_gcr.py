"""The `gcr` source against a stand-in of GCR's Registry v2 API with Google's extension.

Real google-auth credentials (a service-account key whose token endpoint is
a second stand-in) give the access token; the registry's token endpoint must
get it as the password of `oauth2accesstoken`, and the registry the token it
handed out. Nothing is sent to any other host.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.builders import utc
from harness.standins.base import Reply, StandInServer, json_reply, serving
from harness.standins.google import GoogleStandIn, use_service_account
from harness.standins.registry import RegistryStandIn
from webhook.config import GcrSource
from webhook.core.pinning import Image
from webhook.sources import SourceError
from webhook.sources.gcr import GcrImages

NAME = "moz-fx-data-experiments/jetstream"
REPOSITORY = f"gcr.io/{NAME}"


@dataclass
class Gcr:
    registry: RegistryStandIn
    stand_in: StandInServer
    google: GoogleStandIn
    google_stand_in: StandInServer

    def source(self, **keys: Any) -> GcrImages:
        return GcrImages(REPOSITORY, GcrSource("gcr", endpoint=self.stand_in.url, **keys))


def jetstream_history(registry: RegistryStandIn) -> dict[str, Any]:
    pushed = {
        # timeUploadedMs comes as a string or an integer.
        "old": registry.add_image("old", "2023-01-01T00:00:00Z", (), uploaded_ms="1672578000000"),
        "v1": registry.add_image("v1", "2023-03-01T00:00:00Z", ["v1"], uploaded_ms=1677672000123),
        "amd64": registry.add_image("amd64", "2024-06-09T00:00:00Z", uploaded_ms="1717977600000"),
        "arm64": registry.add_image("arm64", "2024-06-09T00:00:00Z", uploaded_ms="1717977600000"),
    }
    pushed["index"] = registry.add_index(
        [pushed["amd64"], pushed["arm64"]], ["latest", "breaking"], uploaded_ms="1717977601000"
    )
    return pushed


@pytest.fixture
def gcr(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Gcr]:
    google = GoogleStandIn()
    registry = RegistryStandIn(
        NAME, auth="bearer", user="oauth2accesstoken", password="", google=True,
        accepted_passwords=google.issued,
    )  # fmt: skip
    with serving(google) as google_stand_in, serving(registry) as stand_in:
        use_service_account(monkeypatch, tmp_path, f"{google_stand_in.url}/token")
        yield Gcr(registry, stand_in, google, google_stand_in)


def test_reads_the_manifest_map(gcr: Gcr) -> None:
    pushed = jetstream_history(gcr.registry)
    source = gcr.source()
    assert source.name == f"gcr {REPOSITORY}"
    images = {i.digest: i for i in source.images()}
    assert images == {
        pushed["old"].digest: Image(pushed["old"].digest, utc("2023-01-01T13:00:00Z")),
        pushed["v1"].digest: Image(
            pushed["v1"].digest, utc("2023-03-01T12:00:00.123Z"), frozenset({"v1"})
        ),
        pushed["amd64"].digest: Image(
            pushed["amd64"].digest, utc("2024-06-10T00:00:00Z"), index_child=True
        ),
        pushed["arm64"].digest: Image(
            pushed["arm64"].digest, utc("2024-06-10T00:00:00Z"), index_child=True
        ),
        pushed["index"].digest: Image(
            pushed["index"].digest, utc("2024-06-10T00:00:01Z"), frozenset({"latest", "breaking"})
        ),
    }


def test_token_exchange_sends_the_google_token_only_to_the_realm(gcr: Gcr) -> None:
    jetstream_history(gcr.registry)
    source = gcr.source()
    source.images()
    source.images()
    (access_token,) = gcr.google.issued
    exchanges = gcr.stand_in.calls("/token")
    assert [c.headers.get("authorization") for c in exchanges] == [gcr.registry.basic(access_token)]
    assert exchanges[0].param("scope") == f"repository:{NAME}:pull"
    (registry_token,) = gcr.registry.issued
    sent = {c.headers.get("authorization") for c in gcr.stand_in.calls("/v2/")}
    assert sent == {None, f"Bearer {registry_token}"}
    # The Google token endpoint saw a signed assertion, never a registry token.
    assert all("authorization" not in c.headers for c in gcr.google_stand_in.calls())
    # The index was read once for two listings (a digest never changes).
    assert len(gcr.stand_in.calls(f"/v2/{NAME}/manifests/")) == 1


def test_a_realm_on_another_host_gets_no_google_token(gcr: Gcr) -> None:
    jetstream_history(gcr.registry)
    elsewhere = RegistryStandIn(NAME, anonymous_tokens=True, issued=gcr.registry.issued)
    with serving(elsewhere) as other:
        gcr.registry.realm = f"{other.url}/token"
        assert len(gcr.source().images()) == 5
        assert [c.headers.get("authorization") for c in other.calls()] == [None]
    assert gcr.google.issued == []  # no host that may not have it: never even fetched


def test_anonymous_access(gcr: Gcr) -> None:
    jetstream_history(gcr.registry)
    gcr.registry.anonymous_tokens = True
    assert len(gcr.source(credentials="anonymous").images()) == 5
    assert [c.headers.get("authorization") for c in gcr.stand_in.calls("/token")] == [None]
    assert gcr.google.issued == []


def test_link_paging_merges_the_manifest_maps(gcr: Gcr) -> None:
    jetstream_history(gcr.registry)
    gcr.registry.page_size = 1
    assert len(gcr.source().images()) == 5
    pages = gcr.stand_in.calls(f"/v2/{NAME}/tags/list")
    assert [p.param("last") for p in pages if "authorization" in p.headers] == [
        None,
        *sorted(gcr.registry.tags)[:2],
    ]


def test_google_token_failure_is_a_source_error(gcr: Gcr) -> None:
    jetstream_history(gcr.registry)
    gcr.google_stand_in.fault = json_reply({"error": "invalid_grant", "secret": "tok-xyz"}, 400)
    with pytest.raises(SourceError, match="cannot refresh the Google token") as caught:
        gcr.source().images()
    assert caught.value.source == f"gcr {REPOSITORY}"
    assert "tok-xyz" not in str(caught.value)


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (json_reply({"errors": "x"}, 401), "HTTP 401 .*no WWW-Authenticate challenge"),
        (json_reply({"name": NAME, "tags": []}), "manifest: missing .*use type oci"),
        (json_reply({"manifest": []}), "manifest: expected an object"),
        (json_reply({"manifest": {"latest": {}}}), "manifest key: expected a digest"),
        (json_reply({"manifest": {f"sha256:{'a' * 64}": {"tag": []}}}),
         r"manifest\[sha256:aaaaaaaaaaaa\]\.timeUploadedMs: missing"),
        (json_reply({"manifest": {f"sha256:{'a' * 64}": {"timeUploadedMs": "soon"}}}),
         r"timeUploadedMs: expected milliseconds since the epoch"),
        (json_reply({"manifest": {f"sha256:{'a' * 64}": {"timeUploadedMs": 1, "tag": "v1"}}}),
         r"\.tag: expected a list"),
    ],
)  # fmt: skip
def test_faults(gcr: Gcr, fault: Reply, cause: str) -> None:
    gcr.stand_in.fault = fault
    source = GcrImages(REPOSITORY, GcrSource("gcr", endpoint=gcr.stand_in.url, timeout_seconds=0.3))
    with pytest.raises(SourceError, match=cause) as caught:
        source.images()
    assert caught.value.source == f"gcr {REPOSITORY}"
    assert "ya29" not in str(caught.value)
