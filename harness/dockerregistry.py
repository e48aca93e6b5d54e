"""A real registry for tests: Debian's `docker-registry` (CNCF distribution) on loopback.

`running_registry` starts it with a throw-away storage directory and a free
port, and `Pusher` uploads images over its HTTP API exactly as a client
would (blob upload POST + PUT with the digest, manifest PUT), with chosen
`created` times, in the OCI and Docker schema2 formats and as multi-arch
indexes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from harness.ports import free_port
from webhook.sources.registry import (
    CREATED_ANNOTATION,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
)

REGISTRY_BINARY = "docker-registry"
INSTALL_HINT = "apt-get install -y docker-registry (scripts/test installs it)"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclass
class Registry:
    url: str
    log_file: Path
    ca_file: Path | None = None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


def registry_binary() -> str:
    found = shutil.which(REGISTRY_BINARY) or shutil.which(f"/usr/bin/{REGISTRY_BINARY}")
    if found is None:
        pytest.fail(f"the real registry {REGISTRY_BINARY} is missing: {INSTALL_HINT}")
    return found


def registry_config(
    storage: Path, port: int, host: str = "127.0.0.1", tls: tuple[Path, Path] | None = None
) -> str:
    """Distribution's YAML: filesystem storage, one address (loopback unless `host`), errors
    only in the log; HTTPS with `tls` (certificate, key)."""
    http: dict[str, Any] = {"addr": f"{host}:{port}", "secret": "test-only-upload-state-secret"}
    if tls is not None:
        http["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
    config = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        "http": http,
    }
    return json.dumps(config)  # JSON is YAML


@contextmanager
def running_registry(
    workdir: Path, tls: tuple[Path, Path, Path] | None = None
) -> Iterator[Registry]:
    """The registry on loopback; with `tls` (certificate, key, CA) over HTTPS."""
    binary = registry_binary()
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "registry.yml"
    pair = None if tls is None else (tls[0], tls[1])
    config_file.write_text(registry_config(workdir / "storage", port, tls=pair))
    log_file = workdir / "registry.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [binary, "serve", str(config_file)], stdout=log, stderr=subprocess.STDOUT
        )
    scheme = "http" if tls is None else "https"
    registry = Registry(f"{scheme}://127.0.0.1:{port}", log_file, None if tls is None else tls[2])
    try:
        _wait_ready(registry, process)
        yield registry
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(registry: Registry, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{REGISTRY_BINARY} exited with {process.returncode}: {registry.log()}")
        try:
            verify = str(registry.ca_file) if registry.ca_file else True
            if requests.get(f"{registry.url}/v2/", timeout=1, verify=verify).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    pytest.fail(f"{REGISTRY_BINARY} did not answer /v2/ within 20s: {registry.log()}")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


@dataclass
class Pushed:
    digest: str
    media_type: str
    size: int


class Pusher:
    """Pushes images to one repository of a registry over the distribution HTTP API."""

    def __init__(self, url: str, repository: str, ca_file: Path | None = None) -> None:
        self.url = url.rstrip("/")
        self.repository = repository
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE would override `verify`
        if ca_file is not None:
            self.session.verify = str(ca_file)

    def blob(self, data: bytes) -> str:
        blob_digest = sha256(data)
        start = self.session.post(f"{self._base()}/blobs/uploads/", timeout=10)
        assert start.status_code == 202, start.text
        location = urljoin(self.url + "/", start.headers["Location"])
        joiner = "&" if "?" in location else "?"
        done = self.session.put(
            f"{location}{joiner}digest={blob_digest}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            timeout=10,
        )
        assert done.status_code == 201, done.text
        return blob_digest

    def manifest(self, document: Mapping[str, Any], reference: str | None = None) -> Pushed:
        body = canonical(document)
        media_type = str(document["mediaType"])
        put = self.session.put(
            f"{self._base()}/manifests/{reference or sha256(body)}",
            data=body,
            headers={"Content-Type": media_type},
            timeout=10,
        )
        assert put.status_code == 201, put.text
        assert put.headers["Docker-Content-Digest"] == sha256(body)
        return Pushed(sha256(body), media_type, len(body))

    def image(
        self, label: str, created: str | None, tags: Sequence[str] = (), **options: Any
    ) -> Pushed:
        """One image (config `created`, optional created annotation), pushed under each tag."""
        document, blobs = image_document(label, created, **options)
        for blob in blobs:
            self.blob(blob)
        return self._tagged(document, tags)

    def index(self, children: Sequence[Pushed], tags: Sequence[str], **options: Any) -> Pushed:
        """A multi-arch index over already pushed platform manifests."""
        return self._tagged(index_document(children, **options), tags)

    def manifest_tag(self, pushed: Pushed, tag: str) -> None:
        """Point `tag` at an already pushed manifest (moves the tag if it exists)."""
        got = self.session.get(
            f"{self._base()}/manifests/{pushed.digest}",
            headers={"Accept": pushed.media_type},
            timeout=10,
        )
        assert got.status_code == 200, got.text
        put = self.session.put(
            f"{self._base()}/manifests/{tag}",
            data=got.content,
            headers={"Content-Type": pushed.media_type},
            timeout=10,
        )
        assert put.status_code == 201, put.text

    def _tagged(self, document: Mapping[str, Any], tags: Sequence[str]) -> Pushed:
        pushed = self.manifest(document)
        for tag in tags:
            self.manifest(document, tag)
        return pushed

    def _base(self) -> str:
        return f"{self.url}/v2/{self.repository}"


def image_document(
    label: str,
    created: str | None,
    docker: bool = False,
    annotated: str | None = None,
    architecture: str = "amd64",
) -> tuple[dict[str, Any], list[bytes]]:
    """An image manifest and the blobs (config, one layer) it names."""
    layer = f"layer of {label}".encode()
    config: dict[str, Any] = {
        "architecture": architecture,
        "os": "linux",
        "config": {"Labels": {"test": label}},
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]},
    }
    if created is not None:
        config["created"] = created
    config_bytes = canonical(config)
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
        "config": {
            "mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
            "digest": sha256(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": DOCKER_LAYER if docker else OCI_LAYER,
                "digest": sha256(layer),
                "size": len(layer),
            }
        ],
    }
    if annotated is not None:
        document["annotations"] = {CREATED_ANNOTATION: annotated}
    return document, [config_bytes, layer]


def index_document(
    children: Sequence[Pushed], docker: bool = False, annotated: str | None = None
) -> dict[str, Any]:
    architectures = ["amd64", "arm64", "ppc64le", "s390x"]
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST if docker else OCI_INDEX,
        "manifests": [
            {
                "mediaType": child.media_type,
                "digest": child.digest,
                "size": child.size,
                "platform": {"architecture": architectures[i % 4], "os": "linux"},
            }
            for i, child in enumerate(children)
        ],
    }
    if annotated is not None:
        document["annotations"] = {CREATED_ANNOTATION: annotated}
    return document
