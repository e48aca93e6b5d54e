"""The node's images, built without Docker, served by a local registry.

- `LocalRegistry`: Debian's docker-registry over HTTPS on the node network's
  host address (its certificate signed by the control plane's CA); containerd
  uses it as the mirror of gcr.io, quay.io and registry.k8s.io.
- `push_programs`: the pod sandbox's pause image, Argo's argoexec image and
  the stand-in `jetstream` releases, each assembled with crane from one layer
  on an empty base (`--set-platform`: containerd refuses an image without one).
  The stand-in releases follow the example data's history: the same creation
  times (the `org.opencontainers.image.created` annotation, which the `oci`
  source reads first) and tags, `breaking` included.
- `build_webhook`: the project's Dockerfile built by `buildah bud --isolation
  chroot` (vfs storage), as a release would build it, on a stand-in of its
  base: Debian bookworm's Python 3.11 made by debootstrap, with `python` and
  `pip` in /usr/local like the official image (a virtualenv there). The base
  and the built image are cached by content under $JETSTREAM_PIN_CACHE, so
  only a changed source rebuilds. (Not buildah's `--layers` cache: buildah
  1.28 then fails the Dockerfile's `RUN --mount=type=bind,from=wheels` when the
  wheels stage is a cache hit, "couldn't find .../wheels on host".) The stand-in trusts what
  this machine trusts (its CA bundle in a layer of its own, `PIP_CERT` naming
  it): where TLS to PyPI is intercepted, the build's pip still connects.

Building reaches Debian's mirror (debootstrap, the Dockerfile's apt-get) and
PyPI (its pip wheel), like `scripts/get-kube` reaches the Go module proxy;
nothing that runs afterwards leaves this machine.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from harness.builders import EXAMPLES, JETSTREAM
from harness.controlplane import processes, tools
from harness.controlplane.plane import ControlPlane, write_pair
from harness.dockerregistry import registry_binary, registry_config
from harness.ports import free_port
from webhook.sources.registry import CREATED_ANNOTATION

ARGO_VERSION = "v4.1.4"
ARGOEXEC = f"quay.io/argoproj/argoexec:{ARGO_VERSION}"
PAUSE = "registry.k8s.io/pause:3.10.2"
BASE_NAME = "library/python-standin:3.11-bookworm"
WEBHOOK_NAME = "jetstream-pin"
DEBIAN_MIRROR = os.environ.get("JETSTREAM_PIN_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# What the project's image build reads (the Dockerfile and .dockerignore say so).
KEEP_BUILT = 4  # the webhook images kept in buildah's storage (a build and its rebuild, twice)
BUILD_INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "constraints.txt", "README.md")


class BuildFailed(RuntimeError):
    pass


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "jetstream-pin"
    return Path(os.environ.get("JETSTREAM_PIN_CACHE", default)) / "images"


def run(command: Sequence[str | os.PathLike[str]], what: str, timeout: float = 1800,
        env: dict[str, str] | None = None) -> str:  # fmt: skip
    done = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=timeout,
        check=False, env=env,
    )  # fmt: skip
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        raise BuildFailed(f"{what}: {command[0]} exited {done.returncode}:\n{tail}")
    return done.stdout


# The registry.
@dataclass
class LocalRegistry:
    address: str  # host:port
    ca_file: Path

    @property
    def url(self) -> str:
        return f"https://{self.address}"

    def reference(self, name: str) -> str:
        return f"{self.address}/{name}"

    def digest(self, name: str, tag: str) -> str:
        answer = requests.head(
            f"{self.url}/v2/{name}/manifests/{tag}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                     "application/vnd.docker.distribution.manifest.v2+json"},
            verify=str(self.ca_file), timeout=10,
        )  # fmt: skip
        answer.raise_for_status()
        return str(answer.headers["Docker-Content-Digest"])

    @classmethod
    def start(cls, plane: ControlPlane, host: str) -> LocalRegistry:
        authority = plane.authority
        if authority is None:
            raise RuntimeError("the registry's certificate comes from a plane started here")
        folder = plane.state_dir / "registry"
        folder.mkdir(parents=True, exist_ok=True)
        write_pair(folder / "tls", authority.server(["jetstream-pin-registry"], [host]))
        port = free_port(host)
        config = folder / "registry.yml"
        config.write_text(
            registry_config(
                folder / "storage", port, host, (folder / "tls.crt", folder / "tls.key")
            )
        )
        running = processes.start(
            "docker-registry", [registry_binary(), "serve", config], folder / "registry.log"
        )
        plane.adopt(running)
        registry = cls(f"{host}:{port}", plane.ca_file)

        def answers() -> bool:
            got = requests.get(f"{registry.url}/v2/", verify=str(plane.ca_file), timeout=2)
            return got.status_code == 200

        processes.wait_until(running, answers, 30, "answering /v2/")
        return registry


# crane: one-layer images on an empty base.
def _crane(registry: LocalRegistry, *arguments: str) -> str:
    env = dict(os.environ, SSL_CERT_FILE=str(registry.ca_file))
    return run([tools.binary("crane"), *arguments], f"crane {arguments[0]}", 300, env).strip()


def _layer(files: Iterable[tuple[str, Path | None, int]]) -> bytes:
    """A reproducible gzipped layer: (path in the image, file or None for a folder, mode)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for name, source, mode in files:
            info = tarfile.TarInfo(name)
            info.mode, info.mtime, info.uid, info.gid = mode, 0, 0, 0
            if source is None:
                info.type = tarfile.DIRTYPE
                layer.addfile(info)
            else:
                data = source.read_bytes()
                info.size = len(data)
                layer.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def push_layer_image(
    registry: LocalRegistry,
    name: str,
    files: Iterable[tuple[str, Path | None, int]],
    entrypoint: str,
    user: str = "",
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> str:
    """Push a one-layer image as `name` (repository:tag on the registry); its digest."""
    reference = registry.reference(name)
    with tempfile.TemporaryDirectory() as folder:
        layer = Path(folder) / "layer.tar.gz"
        layer.write_bytes(_layer(files))
        _crane(registry, "append", "--oci-empty-base", "-f", str(layer), "-t", reference)
    mutate = ["mutate", reference, "-t", reference, "--set-platform", "linux/amd64",
              "--entrypoint", entrypoint, "--env", f"PATH={PATH}"]  # fmt: skip
    if user:
        mutate += ["--user", user]
    for key, value in (annotations or {}).items():
        mutate += ["--annotation", f"{key}={value}"]
    for key, value in (labels or {}).items():
        mutate += ["--label", f"{key}={value}"]
    _crane(registry, *mutate)
    tag = name.rpartition(":")[2]
    return registry.digest(name.rpartition(":")[0], tag)


def mirrored_name(image: str) -> str:
    """`gcr.io/a/b:t` -> `a/b:t`: where the mirror serves a mirrored registry's image."""
    return image.partition("/")[2]


@dataclass(frozen=True)
class Release:
    """One stand-in jetstream image as pushed: its tags, time and digest."""

    tags: tuple[str, ...]
    created: str
    digest: str


def standin_history() -> list[tuple[tuple[str, ...], str]]:
    """(tags, created) of every stand-in release: the example data's image history."""
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / "static-data.yaml").read_text())
    history = []
    for entry in data["images"][JETSTREAM]:
        if entry.get("indexChild"):
            continue
        uploaded = entry["uploaded"]
        created = uploaded if isinstance(uploaded, str) else uploaded.strftime("%Y-%m-%dT%H:%M:%SZ")
        history.append((tuple(entry["tags"]), created))
    return history


def push_programs(registry: LocalRegistry) -> list[Release]:
    """The pause and argoexec images, and the stand-in jetstream releases (oldest first)."""
    programs = tools.TOOLS / "programs"
    folder = [("tmp/", None, 0o1777)]
    push_layer_image(registry, mirrored_name(PAUSE), [("pause", programs / "pause", 0o755)],
                     "/pause")  # fmt: skip
    push_layer_image(
        registry, mirrored_name(ARGOEXEC),
        [("bin/", None, 0o755), ("bin/argoexec", tools.binary("argoexec"), 0o755), *folder],
        "argoexec", user="8737",
    )  # fmt: skip
    releases = []
    files = [("usr/", None, 0o755), ("usr/local/", None, 0o755), ("usr/local/bin/", None, 0o755),
             ("usr/local/bin/jetstream", programs / "jetstream", 0o755), *folder]  # fmt: skip
    for tags, created in standin_history():
        name = mirrored_name(f"{JETSTREAM}:{tags[0]}")
        digest = push_layer_image(
            registry, name, files, "jetstream",
            annotations={CREATED_ANNOTATION: created},
            labels={"org.opencontainers.image.version": tags[0]},
        )  # fmt: skip
        for tag in tags[1:]:
            _crane(registry, "tag", registry.reference(name), tag)
        releases.append(Release(tags, created, digest))
    return releases


# The webhook's image.
def _digest_of(paths: Iterable[Path], root: Path, extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def base_recipe() -> str:
    return f"debootstrap bookworm {' '.join(BASE_PACKAGES)}; python3 -m venv /usr/local; v1"


def standin_base(registry: LocalRegistry) -> str:
    """Push the stand-in base (made once per recipe, then cached); its reference."""
    key = hashlib.sha256(base_recipe().encode()).hexdigest()[:16]
    layer = cache_dir() / f"python-standin-{key}.tar.gz"
    if not layer.exists():
        _debootstrap(layer)
    reference = registry.reference(BASE_NAME)
    _crane(registry, "append", "--oci-empty-base", "-f", str(layer), "-t", reference)
    if HOST_CA_BUNDLE.exists():
        with tempfile.TemporaryDirectory() as folder:
            trust = Path(folder) / "trust.tar.gz"
            trust.write_bytes(_layer([("etc/ssl/certs/ca-certificates.crt", HOST_CA_BUNDLE,
                                       0o644)]))  # fmt: skip
            _crane(registry, "append", "-b", reference, "-f", str(trust), "-t", reference)
    _crane(registry, "mutate", reference, "-t", reference, "--set-platform", "linux/amd64",
           "--env", f"PATH={PATH}", "--env", "LANG=C.UTF-8",
           "--env", "PIP_CERT=/etc/ssl/certs/ca-certificates.crt", "--cmd", "python3")  # fmt: skip
    return reference


def _debootstrap(layer: Path) -> None:
    layer.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=layer.parent) as work:
        root = Path(work) / "root"
        run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
             "bookworm", root, DEBIAN_MIRROR], "debootstrap")  # fmt: skip
        # The official image's layout: python and pip in /usr/local, outside Debian's.
        run(["chroot", root, "python3", "-m", "venv", "/usr/local"], "python3 -m venv")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc",
                     "usr/share/man", "usr/share/locale", "usr/share/info"):  # fmt: skip
            shutil.rmtree(root / junk, ignore_errors=True)
            (root / junk).mkdir(parents=True, exist_ok=True)
        (root / "etc" / "apt" / "sources.list").write_text(f"deb {DEBIAN_MIRROR} bookworm main\n")
        partial = layer.with_suffix(".partial")
        run(["tar", "--numeric-owner", "--xattrs", "-C", root, "-czf", partial, "."], "tar")
        partial.rename(layer)


def webhook_key(revision: str) -> str:
    """The content the image is built from (and the base recipe and revision)."""
    root = tools.ROOT
    paths = [root / name for name in BUILD_INPUTS]
    trust = hashlib.sha256(HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.exists() else b"")
    sources = (root / "webhook").rglob("*")
    paths += [p for p in sources if p.is_file() and "__pycache__" not in p.parts]
    return _digest_of(paths, root, base_recipe() + trust.hexdigest() + revision)


def _buildah(*arguments: str | os.PathLike[str], runroot: Path) -> list[str]:
    storage = cache_dir() / "buildah"
    return ["buildah", "--root", str(storage), "--runroot", str(runroot),
            "--storage-driver", "vfs", *[str(a) for a in arguments]]  # fmt: skip


def build_webhook(registry: LocalRegistry, runroot: Path, revision: str = "local") -> str:
    """Build (or find in the cache) the webhook image and push it; its tag on the registry."""
    key = webhook_key(revision)
    cached = f"localhost/{WEBHOOK_NAME}:{key}"
    certs = runroot / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    shutil.copy(registry.ca_file, certs / "ca.crt")
    found = subprocess.run(
        _buildah("inspect", "--type", "image", cached, runroot=runroot),
        capture_output=True, check=False,
    )  # fmt: skip
    if found.returncode != 0:
        base = standin_base(registry)
        run(_buildah(
            "bud", "--isolation", "chroot", "--cert-dir", certs,
            "--build-arg", f"PYTHON_IMAGE={base}", "--build-arg", f"REVISION={revision}",
            "-t", cached, "-f", tools.ROOT / "Dockerfile", tools.ROOT, runroot=runroot,
        ), "buildah bud")  # fmt: skip
    target = registry.reference(f"{WEBHOOK_NAME}:{key}")
    run(_buildah("push", "--cert-dir", certs, cached, f"docker://{target}", runroot=runroot),
        "buildah push")  # fmt: skip
    prune(runroot)
    return key


def prune(runroot: Path, keep: int = KEEP_BUILT) -> None:
    """Keep buildah's storage to the `keep` newest built images (vfs stores every layer as
    a full copy: 15 GB after a day of development otherwise). Images in use (a build
    running elsewhere) are refused by buildah and stay."""
    listing = json.loads(run(_buildah("images", "--json", runroot=runroot), "buildah images")
                         or "[]")  # fmt: skip
    ours = f"localhost/{WEBHOOK_NAME}:"
    built = [i for i in listing if any(n.startswith(ours) for n in i.get("names") or [])]
    built.sort(key=lambda image: image["created"], reverse=True)
    kept = {image["id"] for image in built[:keep]}
    for image in listing:
        if image["id"] not in kept:
            subprocess.run(_buildah("rmi", image["id"], runroot=runroot),
                           capture_output=True, timeout=300, check=False)  # fmt: skip
