"""Where `scripts/get-kube` and `scripts/get-helm` put the binaries, by version.

A missing binary is an error naming the command that builds it: the tests that
need the control plane fail, never skip, on a machine without it.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"


class ToolMissing(RuntimeError):
    pass


def _existing(path: Path, how: str) -> Path:
    if not os.access(path, os.X_OK):
        raise ToolMissing(f"{path} is missing: run {how} (it builds from the Go module proxy)")
    return path


def kube_versions() -> list[str]:
    """The Kubernetes versions built, newest (the default) first."""
    listing = TOOLS / "kube" / "versions"
    if not listing.exists():
        raise ToolMissing(f"{listing} is missing: run scripts/get-kube")
    return listing.read_text().split()


def default_version() -> str:
    return kube_versions()[0]


def oldest_version() -> str:
    return kube_versions()[-1]


def version_of_minor(minor: int) -> str:
    """The built version of Kubernetes 1.`minor` (the chart's policy needs 1.30)."""
    for version in kube_versions():
        if int(version.split(".")[1]) == minor:
            return version
    raise ToolMissing(
        f"no Kubernetes 1.{minor} is built: add it to KUBE_VERSIONS in scripts/get-kube"
    )


def kube_binary(name: str, version: str | None = None) -> Path:
    """kube-apiserver or kubectl of `version` (default: the newest built)."""
    folder = TOOLS / "kube" / (version or default_version())
    return _existing(folder / name, "scripts/get-kube")


def binary(name: str) -> Path:
    """etcd, workflow-controller or helm."""
    how = "scripts/get-helm" if name == "helm" else "scripts/get-kube"
    return _existing(TOOLS / "bin" / name, how)


def crds(project: str) -> Path:
    """`argo`, `cert-manager` or `prometheus-operator`: the CRD manifests from its Go module."""
    folder = TOOLS / f"{project}-crds"
    if not folder.is_dir():
        raise ToolMissing(f"{folder} is missing: run scripts/get-kube (links {project}'s module)")
    return folder
