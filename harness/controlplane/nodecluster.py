"""`scripts/cluster up --node`: a one-node cluster running the chart as a platform team would.

`NodeCluster.up(state_dir)`:
1. the node network (`NodeNetwork`), the control plane on its host address,
   the local registry and the node (`Node`);
2. the images (`images`): pause, argoexec, the stand-in jetstream releases,
   and the webhook built from the project's Dockerfile;
3. the real `helm install --wait` of the chart with only the image repository
   and the webhook's data sources set: image history from the `oci` source
   against the local registry (so every digest it pins is one containerd can
   pull), enrollments and metric-hub from static data (the example data);
4. the configuration the chart installed, read back from its ConfigMap, in
   `<state>/config.yaml` (with its static data and the registry's CA beside it,
   and the webhook's ServiceAccount as its Kubernetes identity), so
   `jetstream-pin explain|report --config <state>/config.yaml` on this machine
   decide exactly as the cluster's webhook does;
5. with `argo`, Argo's controller for `argo` and Argo's executor RBAC, so
   Workflow pods run to completion.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness import helm
from harness.builders import EXAMPLES, JETSTREAM
from harness.controlplane import argo, images, release
from harness.controlplane.network import NodeNetwork
from harness.controlplane.node import Node
from harness.controlplane.plane import STATE_FILE, ControlPlane
from harness.controlplane.registration import RELEASE_NAMESPACE

RELEASE = "jetstream-pin"
WORKFLOW_NAMESPACE = release.WORKFLOW_NAMESPACE
# Pinned like `argo`, but no Workflow controller acts there: the tests' pod streams.
STREAM_NAMESPACE = "pods"
CA_CONFIGMAP = "registry-ca"
CA_MOUNT = "/etc/jetstream-pin/registry-ca"
INSTALL_TIMEOUT = "5m"


def example_data() -> dict[str, Any]:
    """The enrollments and metric-hub history of the example data (images come from the
    registry, overrides from the chart's ConfigMap)."""
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / "static-data.yaml").read_text())
    return {"enrollments": data["enrollments"], "commits": data["commits"]}


def chart_values(registry: images.LocalRegistry, tag: str, **extra: Any) -> dict[str, Any]:
    """The chart's values: the image, the data sources (and the registry's CA for them)."""
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / "static-data.yaml").read_text())
    history = {
        "type": "oci",
        "endpoint": registry.url,
        "name": images.mirrored_name(JETSTREAM),
        "caFile": f"{CA_MOUNT}/ca.crt",
    }
    values: dict[str, Any] = {
        "image": {"repository": registry.reference(images.WEBHOOK_NAME), "tag": tag},
        "webhook": {"namespaces": [WORKFLOW_NAMESPACE, STREAM_NAMESPACE]},
        "config": {
            "images": [{"repository": JETSTREAM, "breakingTag": "breaking", "history": history}],
            "enrollments": {"type": "static"},
            "configRepos": [
                {"name": "metric-hub", "env": "METRIC_HUB_SHA", "history": {"type": "static"}}
            ],
        },
        "staticData": json.loads(json.dumps(example_data(), default=_rfc3339)),
        "overrides": {"entries": data.get("overrides", {})},
        "extraVolumes": [{"name": CA_CONFIGMAP, "configMap": {"name": CA_CONFIGMAP}}],
        "extraVolumeMounts": [{"name": CA_CONFIGMAP, "mountPath": CA_MOUNT, "readOnly": True}],
    }
    return release.merged(values, extra)


def _rfc3339(value: Any) -> str:
    return str(value.strftime("%Y-%m-%dT%H:%M:%SZ"))


@dataclass
class NodeCluster:
    plane: ControlPlane
    node: Node
    registry: images.LocalRegistry
    releases: list[images.Release]
    tag: str
    values: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.plane.state_dir

    @property
    def config_file(self) -> Path:
        return self.state_dir / "config.yaml"

    # Up and down.
    @classmethod
    def up(cls, state_dir: Path, with_argo: bool = True) -> NodeCluster:
        network = NodeNetwork.create()
        plane: ControlPlane | None = None
        try:
            started = time.monotonic()
            plane = ControlPlane.start(
                state_dir, address=network.host_address, service_range=network.service_range
            )
            plane.save(node={"index": network.index})
            registry = images.LocalRegistry.start(plane, network.host_address)
            node = Node.start(plane, network, registry.address, plane.ca_file)
            plane.authority = None  # nothing issued later needs the CA key
            timings = {"node ready": time.monotonic() - started}
            started = time.monotonic()
            releases = images.push_programs(registry)
            tag = images.build_webhook(registry, node.runtime_dir / "buildah")
            timings["images"] = time.monotonic() - started
            cluster = cls(plane, node, registry, releases, tag, {}, timings)
            cluster._prepare()
            cluster.values = chart_values(registry, tag)
            timings["helm install --wait"] = cluster.install(cluster.values)
            cluster.write_config()
            if with_argo:
                cluster._start_argo()
            cluster._save()
            return cluster
        except BaseException:
            if plane is not None:
                Node(plane, network).stop()
            else:
                network.remove()
            raise

    @classmethod
    def load(cls, state_dir: Path) -> NodeCluster:
        plane = ControlPlane.load(state_dir)
        state = json.loads((state_dir / STATE_FILE).read_text())
        record = state["cluster"]
        return cls(
            plane,
            Node.load(plane, state["node"]),
            images.LocalRegistry(record["registry"], plane.ca_file),
            [
                images.Release(tuple(r["tags"]), r["created"], r["digest"])
                for r in record["releases"]
            ],
            record["tag"],
            record["values"],
            record["timings"],
        )

    def _save(self) -> None:
        self.plane.save(
            cluster={
                "registry": self.registry.address,
                "releases": [r.__dict__ | {"tags": list(r.tags)} for r in self.releases],
                "tag": self.tag,
                "values": self.values,
                "timings": self.timings,
            }
        )

    def down(self) -> None:
        self.node.stop()

    def healthy(self) -> bool:
        return self.plane.healthy() and self.node.ready()

    # The cluster's objects.
    def _prepare(self) -> None:
        release.bootstrap(self.plane)  # the namespaces and Argo's CRDs
        self.prepare_release(RELEASE_NAMESPACE, STREAM_NAMESPACE)

    def prepare_release(self, namespace: str, pods_namespace: str) -> None:
        """The namespaces of a release of the chart and of the pods it pins, and the
        registry's CA there (the `oci` source's `caFile`)."""
        self.plane.namespace(namespace)
        self.plane.namespace(pods_namespace)
        ca = {"ca.crt": self.registry.ca_file.read_text()}
        self.plane.apply([{"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": CA_CONFIGMAP, "namespace": namespace},
                           "data": ca}])  # fmt: skip

    def helm(self, *arguments: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """The real helm against this cluster; a failure raises with what helm said."""
        done = subprocess.run(
            [helm.helm_binary(), f"--kubeconfig={self.plane.kubeconfig}", *arguments],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"helm {' '.join(arguments)} exited {done.returncode}:\n"
                               f"{done.stdout}\n{done.stderr}")  # fmt: skip
        return done

    def install(self, values: dict[str, Any], command: str = "install", name: str = RELEASE,
                namespace: str = RELEASE_NAMESPACE) -> float:  # fmt: skip
        """`helm install|upgrade --wait` with `values`; its wall time in seconds."""
        values_file = self.state_dir / f"values-{name}.yaml"
        values_file.write_text(yaml.safe_dump(values))
        started = time.monotonic()
        try:
            self.helm(command, name, str(helm.CHART), f"--namespace={namespace}",
                      f"--values={values_file}", "--wait",
                      f"--timeout={INSTALL_TIMEOUT}")  # fmt: skip
        except RuntimeError as err:
            raise RuntimeError(f"{err}\n{self.describe(namespace)}") from None
        return time.monotonic() - started

    def describe(self, namespace: str) -> str:
        """What a reader needs when an install fails: the pods, their events and logs."""
        kubectl = self.plane.kubectl
        parts = [kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout,
                 kubectl("-n", namespace, "get", "events", "--sort-by=.lastTimestamp",
                         check=False).stdout[-4000:]]  # fmt: skip
        names = kubectl("-n", namespace, "get", "pods", "-o", "name", check=False).stdout
        for pod in names.split():
            logs = kubectl("-n", namespace, "logs", pod, "--all-containers", "--tail=30",
                           check=False)  # fmt: skip
            parts.append(f"--- {pod}:\n{logs.stdout}{logs.stderr}")
        return "\n".join(parts)

    def write_config(self) -> None:
        """The configuration the chart installed, for `jetstream-pin` on this machine."""
        configmap = json.loads(self.plane.kubectl(
            "-n", RELEASE_NAMESPACE, "get", "configmap", release.fullname(RELEASE), "-o", "json"
        ).stdout)["data"]  # fmt: skip
        config: dict[str, Any] = yaml.safe_load(configmap["config.yaml"])
        if "static-data.yaml" in configmap:
            (self.state_dir / "static-data.yaml").write_text(configmap["static-data.yaml"])
        ca = self.state_dir / "registry-ca.crt"
        ca.write_text(self.registry.ca_file.read_text())
        for image in config["images"]:
            if image["history"].get("caFile") == f"{CA_MOUNT}/ca.crt":
                image["history"]["caFile"] = ca.name  # relative to the config file
        account = release.fullname(RELEASE)
        kubeconfig = self.plane.kubeconfig_for(RELEASE_NAMESPACE, account)
        config["kubernetes"]["kubeconfig"] = str(kubeconfig)
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))

    def _start_argo(self) -> None:
        self.plane.apply(argo.executor_rbac(WORKFLOW_NAMESPACE))
        controller = argo.start_controller(self.plane, WORKFLOW_NAMESPACE, self.state_dir / "argo")
        self.plane.adopt(controller.running)

    def release_digest(self, tag: str) -> str:
        return next(r.digest for r in self.releases if tag in r.tags)


def get(cluster: NodeCluster, *what: str, namespace: str | None = None) -> Any:
    """`kubectl get ... -o json` on the cluster, as a user reads it."""
    scope = ["-n", namespace] if namespace else []
    return json.loads(cluster.plane.kubectl(*scope, "get", *what, "-o", "json").stdout)


def ca_bundle(cluster: NodeCluster, name: str) -> bytes:
    """The caBundle the API server holds for webhook configuration `name`."""
    found = json.loads(cluster.plane.kubectl(
        "get", "mutatingwebhookconfiguration", name, "-o", "json").stdout)  # fmt: skip
    return base64.b64decode(found["webhooks"][0]["clientConfig"]["caBundle"])
