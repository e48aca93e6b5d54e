"""The real `helm` binary rendering the real chart, for the chart tests and the control plane."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from harness.builders import ROOT

CHART = ROOT / "charts" / "jetstream-pin"


class HelmMissing(RuntimeError):
    pass


def helm_binary() -> str:
    found = ROOT / ".tools" / "bin" / "helm"
    if found.is_file() and os.access(found, os.X_OK):
        return str(found)
    on_path = shutil.which("helm")
    if on_path is None:
        raise HelmMissing("the chart tests need the real helm binary: run scripts/get-helm")
    return on_path


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm_binary(), *args], capture_output=True, text=True, timeout=120, check=False
    )


def render(
    release: str,
    namespace: str,
    kube: str,
    sets: tuple[str, ...] = (),
    values: dict[str, Any] | None = None,
    extra: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """`helm template` of the chart, as objects; a failure raises with helm's stderr."""
    args = ["template", release, str(CHART), "--namespace", namespace, "--kube-version", kube]
    for item in sets:
        args += ["--set", item]
    with tempfile.TemporaryDirectory() as folder:
        if values is not None:
            file = Path(folder) / "values.yaml"
            file.write_text(yaml.safe_dump(values))
            args += ["--values", str(file)]
        done = run_helm(*args, *extra)
    if done.returncode != 0:
        raise RuntimeError(f"helm template failed:\n{done.stderr}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def webhook_configuration(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The MutatingWebhookConfiguration the release ends up with: a chart object, or (in
    selfManaged mode) the copy in the ConfigMap that the post-install Job registers."""
    found = [o for o in objects if o["kind"] == "MutatingWebhookConfiguration"]
    for obj in objects:
        if obj["kind"] == "ConfigMap" and "configuration.yaml" in obj.get("data", {}):
            found.append(yaml.safe_load(obj["data"]["configuration.yaml"]))
    if len(found) != 1:
        raise AssertionError(f"expected one webhook configuration, got {len(found)}")
    return found[0]
