"""The chart's objects that a webhook running outside the cluster still needs.

`install_identity` applies, from the chart as helm renders it, the webhook's
ServiceAccount, its RBAC and the overrides ConfigMap; the webhook then talks to
the API server with a token of that ServiceAccount (TokenRequest), so every
call it makes is checked by the chart's least-privilege RBAC. Argo's Workflow
CRD comes from Argo's own module (`scripts/get-kube` links it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from harness import helm
from harness.builders import EXAMPLES
from harness.controlplane import processes, tools
from harness.controlplane.plane import ControlPlane
from harness.controlplane.registration import RELEASE_NAMESPACE
from harness.servers import example_config
from webhook import certs

IDENTITY_TEMPLATES = (
    "templates/serviceaccount.yaml",
    "templates/rbac.yaml",
    "templates/overrides.yaml",
)
WORKFLOW_NAMESPACE = "argo"


def fullname(release: str) -> str:
    return release if "jetstream-pin" in release else f"{release}-jetstream-pin"


def _example_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / "static-data.yaml").read_text())
    return data


def chart_values(namespaces: list[str], **extra: Any) -> dict[str, Any]:
    """The webhook for `namespaces`; the example data's pins move into the overrides
    ConfigMap, where a cluster keeps them."""
    overrides = {"create": True, "entries": _example_data().get("overrides", {})}
    return merged({"webhook": {"namespaces": namespaces}, "overrides": overrides}, extra)


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` over `base`, mapping by mapping, as helm merges values files."""
    result = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def install_identity(
    plane: ControlPlane, release: str, values: dict[str, Any]
) -> list[dict[str, Any]]:
    """Apply the chart's ServiceAccount, Roles, RoleBindings and overrides ConfigMap."""
    extra: tuple[str, ...] = ()
    for template in IDENTITY_TEMPLATES:
        extra += ("--show-only", template)
    objects = helm.render(
        release, RELEASE_NAMESPACE, plane.version.lstrip("v"), values=values, extra=extra
    )
    plane.apply(objects)
    return objects


class _CrdLoader(yaml.SafeLoader):
    """Reads a bare `=` (an enum value in prometheus-operator's CRDs) as the string it is,
    not as YAML 1.1's obsolete value tag."""


def _plain_string(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    assert isinstance(node, yaml.ScalarNode)
    return loader.construct_scalar(node)


_CrdLoader.add_constructor("tag:yaml.org,2002:value", _plain_string)


def install_crds(plane: ControlPlane, project: str, pattern: str = "*.yaml") -> None:
    """`argo`, `cert-manager` or `prometheus-operator`: the CRDs in that project's module
    (the files matching `pattern`), established."""
    documents: list[dict[str, Any]] = []
    for path in sorted(tools.crds(project).glob(pattern)):
        documents.extend(
            doc
            for doc in yaml.load_all(path.read_text(), Loader=_CrdLoader)
            if doc and doc.get("kind") == "CustomResourceDefinition"
        )
    if plane.minor < 31:  # selectableFields came in 1.31; older servers refuse the field
        for document in documents:
            for version in document["spec"]["versions"]:
                version.pop("selectableFields", None)
    plane.apply(documents)
    for document in documents:
        plane.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s",
            f"crd/{document['metadata']['name']}",
        )  # fmt: skip


def bootstrap(plane: ControlPlane) -> None:
    """What every use starts from: the namespaces, Argo's CRDs."""
    plane.namespace(RELEASE_NAMESPACE)
    plane.namespace(WORKFLOW_NAMESPACE)
    install_crds(plane, "argo")


@dataclass
class Webhook:
    """A `jetstream-pin serve` process registered as the chart's webhook."""

    release: str
    url: str
    admin_url: str
    ca_pem: bytes
    config: dict[str, Any]
    running: processes.Running

    @property
    def mutate_url(self) -> str:
        return f"{self.url}/mutate"

    @property
    def ca_file(self) -> Path:
        return Path(self.config["server"]["certFile"]).parent / certs.CA_FILE

    def get(self, path: str, admin: bool = False) -> requests.Response:
        base = self.admin_url if admin else self.url
        return requests.get(f"{base}{path}", verify=str(self.ca_file), timeout=5)


def webhook_config(
    plane: ControlPlane, workdir: Path, release: str, kubernetes: bool = True, **overrides: Any
) -> dict[str, Any]:
    """The embedded default (static example data), talking to the API server as the chart's
    ServiceAccount when `kubernetes`; `overrides` replace top-level keys."""
    config = example_config(workdir)
    config["server"].update(workers=1, threads=8)
    if kubernetes:
        data = _example_data()
        data.pop("overrides", None)  # the chart's ConfigMap holds them (chart_values)
        config["static"] = str(workdir / "static-data.yaml")
        Path(config["static"]).write_text(yaml.safe_dump(data))
        name = fullname(release)
        config["kubernetes"] = {
            "kubeconfig": str(plane.kubeconfig_for(RELEASE_NAMESPACE, name)),
            "timeoutSeconds": 2,
            "cacheSeconds": 1,
            "overridesConfigMap": {"name": f"{name}-overrides", "namespace": RELEASE_NAMESPACE},
        }
    config.update(overrides)
    return config


SERVE = ("webhook", "serve", "--config")


def start_webhook(
    workdir: Path, release: str, config: dict[str, Any], module: Sequence[str] = SERVE
) -> Webhook:
    """Start `python -m <module...> CONFIG` on its own certificate and wait for /healthz
    (the benchmark swaps in its no-op server)."""
    cert_dir = Path(config["server"]["certFile"]).parent
    cert_dir.mkdir(parents=True, exist_ok=True)
    bundle = certs.issue(["localhost"], ["127.0.0.1"])
    certs.write(bundle, cert_dir)
    config_file = workdir / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    port, admin_port = config["server"]["port"], config["server"]["adminPort"]
    webhook = Webhook(
        release, f"https://127.0.0.1:{port}", f"https://127.0.0.1:{admin_port}",
        bundle.ca_pem, config, _launch(workdir, release, config_file, module),
    )  # fmt: skip
    _wait_healthy(webhook)
    return webhook


def restart_webhook(webhook: Webhook) -> None:
    """Start a stopped webhook again: same port, certificate and config (back from an outage)."""
    config_file = webhook.running.log.parent / "config.yaml"
    webhook.running = _launch(config_file.parent, webhook.release, config_file, SERVE)
    _wait_healthy(webhook)


def _launch(
    workdir: Path, release: str, config_file: Path, module: Sequence[str]
) -> processes.Running:
    return processes.start(
        f"webhook {release}",
        [sys.executable, "-m", *module, config_file],
        workdir / "webhook.log",
        env=_environment(),
        cwd=workdir,
    )


def _wait_healthy(webhook: Webhook) -> None:
    processes.wait_until(
        webhook.running,
        lambda: webhook.get("/healthz").status_code == 200,
        60,
        "healthy (/healthz)",
    )


def _environment() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(tools.ROOT))
