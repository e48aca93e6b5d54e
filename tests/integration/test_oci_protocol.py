"""The `oci` source against a Registry v2 stand-in: auth challenges, Link paging, faults.

The real registry (test_oci_registry.py) runs without auth and ignores
`n`/`last`; this stand-in does what it cannot, over a real HTTP wire.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from harness.builders import utc
from harness.standins.base import Reply, StandInServer, json_reply, serving
from harness.standins.registry import RegistryStandIn
from webhook.config import OciSource
from webhook.sources import SourceError
from webhook.sources.oci import OciImages

NAME = "team/app"


def populated(**options: Any) -> RegistryStandIn:
    registry = RegistryStandIn(NAME, **options)
    for month in range(1, 8):
        registry.add_image(f"m{month}", f"2024-0{month}-01T00:00:00Z", [f"v{month}"])
    return registry


def source_for(stand_in: StandInServer, **keys: Any) -> OciImages:
    config = OciSource("oci", endpoint=stand_in.url, **keys)
    return OciImages(f"registry.example.com/{NAME}", config)


def auth_file(tmp_path: Path, host: str, user: str, password: str) -> Path:
    path = tmp_path / "dockerconfig.json"
    path.write_text(json.dumps({"auths": {host: {"username": user, "password": password}}}))
    return path


def test_link_paging_reads_every_page() -> None:
    registry = populated(page_size=3)
    with serving(registry) as stand_in:
        images = source_for(stand_in).images()
        pages = stand_in.calls(f"/v2/{NAME}/tags/list")
    assert sorted(t for i in images for t in i.tags) == [f"v{m}" for m in range(1, 8)]
    assert [(p.param("n"), p.param("last")) for p in pages] == [
        ("1000", None), ("3", "v3"), ("3", "v6")
    ]  # fmt: skip


def test_paging_that_loops_is_a_source_error() -> None:
    def looping(request: Any) -> Reply:
        reply = json_reply({"name": NAME, "tags": []})
        reply.headers = {**reply.headers, "Link": f'</v2/{NAME}/tags/list?last=x>; rel="next"'}
        return reply

    with serving(looping) as stand_in, pytest.raises(SourceError, match="does not end"):
        source_for(stand_in).images()


def test_bearer_challenge_with_credentials_from_the_auth_file(tmp_path: Path) -> None:
    registry = populated(auth="bearer")
    with serving(registry) as stand_in:
        secret_file = auth_file(tmp_path, "registry.example.com", registry.user, registry.password)
        source = source_for(stand_in, auth_file=secret_file)
        assert len(source.images()) == 7
        token_calls = stand_in.calls("/token")
        assert [c.headers.get("authorization") for c in token_calls] == [registry.basic()]
        assert token_calls[0].param("scope") == f"repository:{NAME}:pull"
        assert token_calls[0].param("service") == "standin"
        answered = [c for c in stand_in.calls("/v2/") if "authorization" in c.headers]
        # Every authenticated call carries the one token the realm issued, nothing else.
        assert {c.headers["authorization"] for c in answered} == {f"Bearer {registry.issued[0]}"}
        # The token is reused: one exchange for the whole listing and a refresh.
        source.images()
        assert len(stand_in.calls("/token")) == 1


def test_a_realm_on_another_host_gets_no_credentials(tmp_path: Path) -> None:
    registry = populated(auth="bearer")
    realm_side = RegistryStandIn(NAME, anonymous_tokens=True, issued=registry.issued)
    with serving(realm_side) as realm, serving(registry) as stand_in:
        registry.realm = f"{realm.url}/token"
        secret_file = auth_file(tmp_path, "registry.example.com", registry.user, registry.password)
        assert len(source_for(stand_in, auth_file=secret_file).images()) == 7
        assert [c.headers.get("authorization") for c in realm.calls("/token")] == [None]
        # Listed as a credential host, the realm gets them.
        trusted = source_for(stand_in, auth_file=secret_file, credential_hosts=(realm.url,))
        registry.issued.clear()
        assert len(trusted.images()) == 7
        assert realm.calls("/token")[-1].headers.get("authorization") == registry.basic()
        # The registry token never leaves the registry host.
        assert all("authorization" not in c.headers for c in realm.calls("/v2/"))


def test_basic_challenge(tmp_path: Path) -> None:
    registry = populated(auth="basic")
    with serving(registry) as stand_in:
        secret_file = auth_file(tmp_path, "registry.example.com", registry.user, registry.password)
        assert len(source_for(stand_in, auth_file=secret_file).images()) == 7
        with pytest.raises(SourceError, match=r"HTTP 401 .*not authorized") as caught:
            source_for(stand_in).images()
    assert registry.password not in str(caught.value)


def test_wrong_credentials_are_a_source_error_without_the_secret(tmp_path: Path) -> None:
    registry = populated(auth="bearer")
    with serving(registry) as stand_in:
        secret_file = auth_file(tmp_path, "registry.example.com", registry.user, "wrong-secret")
        with pytest.raises(SourceError, match=r"HTTP 401 from .*not authorized") as caught:
            source_for(stand_in, auth_file=secret_file).images()
    assert "wrong-secret" not in str(caught.value)
    assert caught.value.source == f"oci registry.example.com/{NAME}"


def test_an_unreadable_auth_file_is_a_source_error(tmp_path: Path) -> None:
    registry = populated(auth="bearer")
    (tmp_path / "broken.json").write_text("{not json")
    with serving(registry) as stand_in, pytest.raises(SourceError, match=r"broken\.json: not JSON"):
        source_for(stand_in, auth_file=tmp_path / "broken.json").images()


@contextmanager
def misbehaving(fault: Reply | None = None, **edits: Any) -> Iterator[OciImages]:
    """A registry whose every answer is `fault`, or whose content is edited."""
    registry = populated(**edits)
    with serving(registry) as stand_in:
        stand_in.fault = fault
        yield OciImages(
            f"registry.example.com/{NAME}",
            OciSource("oci", endpoint=stand_in.url, timeout_seconds=0.3),
        )


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (json_reply({"secret": "tok-xyz"}, 401), "HTTP 401 .*no WWW-Authenticate challenge"),
        (Reply(401, b"", {"WWW-Authenticate": 'Bearer realm="ftp://x/"'}), "realm is not"),
        (json_reply({"name": NAME}), "malformed answer from .*: tags: missing"),
        (json_reply({"name": NAME, "tags": "v1"}), "tags: expected a list"),
        (json_reply(["v1"]), "tags/list: expected an object"),
    ],
)
def test_faults(fault: Reply, cause: str) -> None:
    with misbehaving(fault) as source, pytest.raises(SourceError, match=cause) as caught:
        source.images()
    assert caught.value.source == f"oci registry.example.com/{NAME}"
    assert "tok-xyz" not in str(caught.value)


def test_a_manifest_whose_digest_header_lies() -> None:
    registry = populated()
    digest = registry.tags["v1"]
    media_type, body = registry.manifests[digest]
    registry.manifests[digest] = (media_type, body + b" ")  # served with the old digest
    with (
        serving(registry) as stand_in,
        pytest.raises(SourceError, match="Docker-Content-Digest does not match the body"),
    ):
        source_for(stand_in).images()


def test_unsupported_manifest_type_names_the_tag() -> None:
    registry = populated()
    registry.add_manifest({"mediaType": "application/vnd.oci.image.manifest.v1+json"}, ["bare"])
    with serving(registry) as stand_in, pytest.raises(SourceError, match=r"tag 'bare'.*config"):
        source_for(stand_in).images()


def test_index_children_times_when_one_child_has_none() -> None:
    """An attestation-like child without `created` is skipped for the index's time."""
    registry = RegistryStandIn(NAME)
    platform = registry.add_image("amd64", "2024-05-05T00:00:00Z")
    attestation = registry.add_image("attestation", None)
    index = registry.add_index([platform, attestation], ["v1"])
    with serving(registry) as stand_in:
        images = {i.digest: i for i in source_for(stand_in).images()}
    assert images[index.digest].uploaded == utc("2024-05-05T00:00:00Z")
    assert images[attestation.digest].index_child
