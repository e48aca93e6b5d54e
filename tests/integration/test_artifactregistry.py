"""The `artifactregistry` source against a stand-in of the REST `dockerImages.list` API.

Real google-auth credentials (service-account key, token endpoint a stand-in)
give the Bearer token; the listing is paged, holds other images of the same
repository, and a multi-arch index whose children are read over a Registry
v2 stand-in (the repository's `-docker.pkg.dev` host).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.builders import digest, utc
from harness.standins.artifactregistry import (
    IMAGE,
    LIST_PATH,
    LOCATION,
    PARENT,
    PROJECT,
    REPOSITORY,
    ArtifactRegistryStandIn,
    docker_image,
)
from harness.standins.base import Reply, StandInServer, json_reply, serving
from harness.standins.google import GoogleStandIn, use_service_account
from harness.standins.registry import RegistryStandIn
from webhook.config import ArtifactRegistrySource
from webhook.core.pinning import Image
from webhook.sources import SourceError
from webhook.sources.artifactregistry import ArtifactRegistryImages
from webhook.sources.registry import OCI_INDEX


@dataclass
class Ar:
    api: ArtifactRegistryStandIn
    stand_in: StandInServer
    docker: RegistryStandIn
    docker_stand_in: StandInServer
    google: GoogleStandIn

    def source(self, **keys: Any) -> ArtifactRegistryImages:
        return ArtifactRegistryImages(
            ArtifactRegistrySource(
                "artifactregistry", PROJECT, LOCATION, REPOSITORY, IMAGE,
                endpoint=self.stand_in.url, docker_endpoint=self.docker_stand_in.url, **keys,
            )
        )  # fmt: skip


@pytest.fixture
def ar(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Ar]:
    google = GoogleStandIn()
    api = ArtifactRegistryStandIn([], google, page_size=2)
    docker = RegistryStandIn(
        f"{PROJECT}/{REPOSITORY}/{IMAGE}", auth="bearer", user="oauth2accesstoken", password="",
        accepted_passwords=google.issued,
    )  # fmt: skip
    with (
        serving(google) as google_stand_in,
        serving(api) as stand_in,
        serving(docker) as docker_stand_in,
    ):
        use_service_account(monkeypatch, tmp_path, f"{google_stand_in.url}/token")
        yield Ar(api, stand_in, docker, docker_stand_in, google)


def jetstream_history(ar: Ar) -> dict[str, str]:
    amd64 = ar.docker.add_image("amd64", "2024-06-09T00:00:00Z")
    arm64 = ar.docker.add_image("arm64", "2024-06-09T00:00:00Z", architecture="arm64")
    index = ar.docker.add_index([amd64, arm64], ["latest"])
    digests = {"v1": digest("v1"), "v2": digest("v2"), "amd64": amd64.digest,
               "arm64": arm64.digest, "index": index.digest}  # fmt: skip
    ar.api.images = [
        docker_image(IMAGE, digests["v1"], "2023-01-01T13:00:00.123456789Z", "v1"),
        docker_image("jetstream-foo", digest("foo"), "2023-02-01T00:00:00Z", "latest"),
        docker_image(IMAGE, digests["v2"], "2023-03-01T00:00:00Z"),
        docker_image("jetstream/nested", digest("nested"), "2023-04-01T00:00:00Z"),
        docker_image(IMAGE, amd64.digest, "2024-06-10T00:00:00.5Z"),
        docker_image(IMAGE, arm64.digest, "2024-06-10T00:00:00.6Z"),
        docker_image(IMAGE, index.digest, "2024-06-10T00:00:00.7Z", "latest", "breaking",
                     media_type=OCI_INDEX),
    ]  # fmt: skip
    return digests


def test_lists_the_configured_image_across_pages(ar: Ar) -> None:
    digests = jetstream_history(ar)
    source = ar.source()
    assert source.name == f"artifactregistry {PROJECT}/{REPOSITORY}/{IMAGE}"
    images = {i.digest: i for i in source.images()}
    assert images == {
        digests["v1"]: Image(digests["v1"], utc("2023-01-01T13:00:00.123456Z"), frozenset({"v1"})),
        digests["v2"]: Image(digests["v2"], utc("2023-03-01T00:00:00Z")),
        digests["amd64"]: Image(digests["amd64"], utc("2024-06-10T00:00:00.5Z"), index_child=True),
        digests["arm64"]: Image(digests["arm64"], utc("2024-06-10T00:00:00.6Z"), index_child=True),
        digests["index"]: Image(
            digests["index"], utc("2024-06-10T00:00:00.7Z"), frozenset({"latest", "breaking"})
        ),
    }
    pages = ar.stand_in.calls(LIST_PATH)
    assert [(p.param("pageSize"), p.param("pageToken")) for p in pages] == [
        ("1000", None), ("1000", "2"), ("1000", "4"), ("1000", "6")
    ]  # fmt: skip


def test_credentials_go_only_to_the_configured_hosts(ar: Ar) -> None:
    jetstream_history(ar)
    source = ar.source()
    source.images()
    source.images()
    (access_token,) = ar.google.issued
    assert {c.headers.get("authorization") for c in ar.stand_in.calls()} == {
        f"Bearer {access_token}"
    }
    # The index was read once, over the registry host, with a token exchanged for it.
    exchanges = ar.docker_stand_in.calls("/token")
    assert [c.headers.get("authorization") for c in exchanges] == [ar.docker.basic(access_token)]
    manifests = [c for c in ar.docker_stand_in.calls("/v2/") if "authorization" in c.headers]
    assert [c.headers["authorization"] for c in manifests] == [f"Bearer {ar.docker.issued[0]}"]


def test_no_index_no_registry_call(ar: Ar) -> None:
    ar.api.images = [docker_image(IMAGE, digest("v1"), "2023-01-01T00:00:00Z", "v1")]
    assert len(ar.source().images()) == 1
    assert ar.docker_stand_in.calls() == []


def test_empty_repository_answers_no_field(ar: Ar) -> None:
    assert ar.source().images() == []  # Google omits an empty `dockerImages`


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (json_reply({"error": {}}, 401), "HTTP 401 from .*not authorized"),
        (json_reply([]), "response: expected an object"),
        (json_reply({"dockerImages": {}}), "dockerImages: expected a list"),
        (json_reply({"dockerImages": [{"uploadTime": "2024-01-01T00:00:00Z"}]}),
         r"dockerImages\[0\]\.name: missing"),
        (json_reply({"dockerImages": [{"name": "jetstream", "uploadTime": "x"}]}),
         r"dockerImages\[0\]\.name: expected '.../dockerImages/<image>@sha256:<hex>'"),
        (json_reply({"dockerImages": [{"name": f"{PARENT}/dockerImages/jetstream@sha256:1"}]}),
         r"dockerImages\[0\]\.name digest: expected a digest"),
        (json_reply({"dockerImages": [docker_image(IMAGE, digest("a"), "2024-01-01")]}),
         r"dockerImages\[0\]\.uploadTime: expected an RFC 3339 time"),
        (json_reply({"dockerImages": [{**docker_image(IMAGE, digest("a"), "2024-01-01T00:00:00Z"),
                                       "tags": "v1"}]}),
         r"dockerImages\[0\]\.tags: expected a list"),
        (json_reply({"dockerImages": [], "nextPageToken": 7}),
         "nextPageToken: expected a non-empty"),
    ],
)  # fmt: skip
def test_faults(ar: Ar, fault: Reply, cause: str) -> None:
    ar.stand_in.fault = fault
    with pytest.raises(SourceError, match=cause) as caught:
        ar.source(timeout_seconds=0.3).images()
    assert caught.value.source == f"artifactregistry {PROJECT}/{REPOSITORY}/{IMAGE}"
    assert "ya29" not in str(caught.value)


def test_paging_that_loops(ar: Ar) -> None:
    ar.stand_in.fault = json_reply({"dockerImages": [], "nextPageToken": "same"})
    with pytest.raises(SourceError, match=r"paging from .* does not end"):
        ar.source().images()


def test_index_read_failure_names_the_source(ar: Ar) -> None:
    jetstream_history(ar)
    ar.docker_stand_in.fault = json_reply({"errors": []}, 502)
    with pytest.raises(SourceError, match="HTTP 502 from") as caught:
        ar.source().images()
    assert caught.value.source == f"artifactregistry {PROJECT}/{REPOSITORY}/{IMAGE}"
