"""Config -> image history sources: each type builds its source, and mistakes stop the start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from webhook.config import ConfigError, parse_config
from webhook.sources.artifactregistry import ArtifactRegistryImages
from webhook.sources.gcr import GcrImages
from webhook.sources.oci import OciImages
from webhook.wiring import Wiring

JETSTREAM = "gcr.io/moz-fx-data-experiments/jetstream"


def wiring(history: dict[str, Any], repository: str = JETSTREAM) -> Wiring:
    data = {
        "images": [{"repository": repository, "history": history}],
        "enrollments": {"type": "static"},
        "static": "data.yaml",
    }
    return Wiring(parse_config(data, Path("/etc/jp")))


def build(history: dict[str, Any], repository: str = JETSTREAM) -> Any:
    w = wiring(history, repository)
    return w.image_history(w.config.images[0])


def test_artifactregistry() -> None:
    source = build({"type": "artifactregistry", "project": "moz-fx-data-experiments",
                    "location": "us", "repository": "gcr.io", "image": "jetstream"})  # fmt: skip
    assert isinstance(source, ArtifactRegistryImages)
    assert source.name == "artifactregistry moz-fx-data-experiments/gcr.io/jetstream"
    assert source.http.base_url == "https://artifactregistry.googleapis.com/"
    assert source.children.registry.where == "https://us-docker.pkg.dev"


def test_gcr_takes_host_and_name_from_the_repository() -> None:
    source = build({"type": "gcr", "credentials": "anonymous"})
    assert isinstance(source, GcrImages)
    assert source.name == f"gcr {JETSTREAM}"
    assert source.registry.where == "https://gcr.io"
    assert source.registry.repository == "moz-fx-data-experiments/jetstream"


def test_oci_defaults_and_overrides() -> None:
    source = build({"type": "oci"}, "registry.example.com:5000/team/app")
    assert isinstance(source, OciImages)
    assert source.name == "oci registry.example.com:5000/team/app"
    assert source.registry.where == "https://registry.example.com:5000"
    mirrored = build(
        {"type": "oci", "name": "mirror/app", "endpoint": "https://mirror.example.com/base",
         "timeoutSeconds": 1.5}, "registry.example.com/team/app",
    )  # fmt: skip
    assert mirrored.name == "oci registry.example.com/mirror/app"
    assert mirrored.registry.http.base_url == "https://mirror.example.com/base/"
    assert mirrored.registry.http.timeout == 1.5


def test_oci_auth_file_is_checked_at_start(tmp_path: Path) -> None:
    good = tmp_path / "config.json"
    good.write_text(json.dumps({"auths": {"https://registry.example.com/v1/": {"auth": "dTpw"}}}))
    assert isinstance(
        build({"type": "oci", "authFile": str(good)}, "registry.example.com/a/b"), OciImages
    )
    with pytest.raises(ConfigError, match=r"authFile .*: no entry for registry other\.example"):
        build({"type": "oci", "authFile": str(good)}, "other.example/a/b")
    with pytest.raises(ConfigError, match="cannot read"):
        build({"type": "oci", "authFile": str(tmp_path / "missing")}, "registry.example.com/a/b")


@pytest.mark.parametrize(
    ("history", "repository", "message"),
    [
        ({"type": "oci", "endpoint": "http://registry.example.com"}, JETSTREAM,
         "endpoint: plain http is only allowed to the loopback interface"),
        ({"type": "gcr", "endpoint": "ftp://x"}, JETSTREAM, "endpoint: must be an https:// URL"),
        ({"type": "oci", "endpoint": "https://u:p@r.example"}, JETSTREAM, "without credentials"),
        ({"type": "oci"}, "jetstream/app", "must start with the registry host"),
        ({"type": "gcr"}, "jetstream", "must start with the registry host"),
        ({"type": "oci", "credentialHosts": ["http://auth.example.com"]}, JETSTREAM,
         r"credentialHosts\[0\]: plain http"),
        ({"type": "artifactregistry", "project": "p", "location": "us", "repository": "r",
          "image": "i", "dockerEndpoint": "http://x.example"}, JETSTREAM,
         "dockerEndpoint: plain http"),
        ({"type": "oci", "credentialHosts": "auth.example.com"}, JETSTREAM, "must be a list"),
        ({"type": "oci", "authFile": 3}, JETSTREAM, "authFile: must be a file path"),
    ],
)  # fmt: skip
def test_mistakes_name_the_key(history: dict[str, Any], repository: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(history, repository)


def test_loopback_http_is_allowed_for_tests_and_local_mirrors() -> None:
    assert isinstance(build({"type": "oci", "endpoint": "http://127.0.0.1:5000"}), OciImages)
