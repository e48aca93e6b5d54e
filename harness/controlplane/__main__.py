"""`scripts/cluster up|down|status`: a local control plane with the webhook registered.

`up --node` starts a one-node cluster instead (`nodecluster`): pods run, the
webhook is the image built from the Dockerfile, installed with `helm install
--wait`; `--argo` adds Argo's controller there too.

`up` starts etcd, kube-apiserver and the webhook (the embedded default, or
`--config F`), installs the chart's admission policy (Kubernetes 1.30 and
later) and registers its webhook configuration for namespace `argo`, and
prints the kubeconfig and a command to try; `--argo` also starts
Argo's workflow-controller for `argo`. A second `up` reports the running
control plane instead of starting another. `down` stops every
process `up` started and removes `.tools/cluster`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from harness.controlplane import argo, policy, registration, release, tools
from harness.controlplane.nodecluster import NodeCluster
from harness.controlplane.plane import STATE_FILE, ControlPlane

STATE_DIR = tools.TOOLS / "cluster"
RELEASE = "jetstream-pin"


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _is_node(state_dir: Path) -> bool:
    return "node" in json.loads((state_dir / STATE_FILE).read_text())


def up(version: str | None, config_file: Path | None, with_argo: bool, node: bool) -> int:
    if (STATE_DIR / STATE_FILE).exists():
        if _is_node(STATE_DIR):
            cluster = NodeCluster.load(STATE_DIR)
            if cluster.healthy():
                print(f"the one-node cluster is running (Kubernetes {cluster.plane.version})")
                _print_node_steps(cluster)
                return 0
        else:
            plane = ControlPlane.load(STATE_DIR)
            if plane.healthy():
                print(f"the control plane is already running (Kubernetes {plane.version})")
                _print_next_steps(plane)
                return 0
        print(f"{STATE_DIR} holds a cluster that is not healthy: run scripts/cluster down")
        return 1
    if node:
        if version is not None or config_file is not None:
            print("--node runs the default version with the chart's configuration")
            return 2
        cluster = NodeCluster.up(STATE_DIR, with_argo)
        timings = ", ".join(f"{what} {seconds:.1f} s" for what, seconds in cluster.timings.items())
        print(f"one-node cluster up: Kubernetes {cluster.plane.version} ({timings})")
        _print_node_steps(cluster)
        return 0
    plane = ControlPlane.start(STATE_DIR, version)
    try:
        release.bootstrap(plane)
        values = release.chart_values([release.WORKFLOW_NAMESPACE])
        release.install_identity(plane, RELEASE, values)
        workdir = STATE_DIR / "webhook"
        workdir.mkdir()
        config = release.webhook_config(plane, workdir, RELEASE)
        if config_file is not None:
            config.update(_user_config(config_file, config))
        webhook = release.start_webhook(workdir, RELEASE, config)
        plane.adopt(webhook.running)
        if plane.minor >= 30:  # before the webhook, whose mutation would hide the policy's probe
            policy.install(plane, RELEASE, release.WORKFLOW_NAMESPACE, values)
        registration.register(
            plane,
            registration.configuration(
                RELEASE, webhook.mutate_url, webhook.ca_pem, plane.version, values
            ),
            release.WORKFLOW_NAMESPACE,
        )
        if with_argo:
            controller = argo.start_controller(
                plane, release.WORKFLOW_NAMESPACE, STATE_DIR / "argo"
            )
            plane.adopt(controller.running)
    except BaseException:
        plane.stop(remove=False)
        raise
    print(f"control plane up: Kubernetes {plane.version}, webhook at {webhook.url}")
    _print_next_steps(plane)
    return 0


def _user_config(path: Path, embedded: dict[str, Any]) -> dict[str, Any]:
    """The user's config with the server and kubernetes sections this control plane needs."""
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    config["server"] = embedded["server"]
    config["kubernetes"] = embedded["kubernetes"]
    return config


def _print_next_steps(plane: ControlPlane) -> None:
    kubeconfig = _relative(plane.kubeconfig)
    print(f"kubeconfig: {kubeconfig}")
    print("try:")
    print(f"  .tools/bin/kubectl --kubeconfig {kubeconfig} create -f examples/experiment-pod.yaml")
    print(
        f"  .tools/bin/kubectl --kubeconfig {kubeconfig} -n argo get pods -o "
        "custom-columns=POD:.metadata.name,IMAGE:.spec.containers[*].image,"
        "REASON:.metadata.annotations.jetstream/pin-reason"
    )
    if any(running.name.startswith("workflow-controller") for running in plane.processes):
        workflow = "examples/argo-workflow.yaml"
        print(f"  .tools/bin/kubectl --kubeconfig {kubeconfig} -n argo create -f {workflow}")


def _print_node_steps(cluster: NodeCluster) -> None:
    kubeconfig = _relative(cluster.plane.kubeconfig)
    config = _relative(cluster.config_file)
    print(f"kubeconfig: {kubeconfig}")
    print(f"the webhook's configuration (as installed by the chart): {config}")
    print("try:")
    kubectl = f".tools/bin/kubectl --kubeconfig {kubeconfig}"
    print(f"  {kubectl} -n argo create -f examples/argo-workflow.yaml")
    print(
        f"  {kubectl} -n argo get pods -o custom-columns="
        "POD:.metadata.name,PHASE:.status.phase,"
        'IMAGEID:.status.containerStatuses[?(@.name=="main")].imageID'
    )
    print(f"  .venv/bin/jetstream-pin explain --config {config} --slug my-experiment")


def down() -> int:
    if not (STATE_DIR / STATE_FILE).exists():
        print("no control plane is running")
        return 0
    if _is_node(STATE_DIR):
        NodeCluster.load(STATE_DIR).down()
        print(f"stopped the one-node cluster, removed its network and {_relative(STATE_DIR)}")
        return 0
    ControlPlane.load(STATE_DIR).stop()
    print(f"stopped the control plane and removed {_relative(STATE_DIR)}")
    return 0


def status() -> int:
    if not (STATE_DIR / STATE_FILE).exists():
        print("no control plane (scripts/cluster up starts one)")
        return 3
    plane = ControlPlane.load(STATE_DIR)
    for running in plane.processes:
        print(f"{running.name:28} pid {running.pid:<8} {'running' if running.alive() else 'DEAD'}")
    healthy = plane.healthy()
    print(f"API server {plane.url}: {'ready' if healthy else 'NOT ready'}")
    print(f"kubeconfig: {_relative(plane.kubeconfig)}")
    return 0 if healthy else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/cluster", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start the control plane and the webhook")
    start.add_argument("--version", help="Kubernetes version built by scripts/get-kube")
    start.add_argument("--config", type=Path, help="the webhook's config (default: embedded)")
    start.add_argument("--argo", action="store_true", help="also run Argo's workflow-controller")
    start.add_argument(
        "--node", action="store_true",
        help="a one-node cluster: pods run; the chart installed with helm install --wait",
    )  # fmt: skip
    commands.add_parser("down", help="stop everything and remove the state")
    commands.add_parser("status", help="what runs, and whether the API server is ready")
    arguments = parser.parse_args(argv)
    if arguments.command == "up":
        return up(arguments.version, arguments.config, arguments.argo, arguments.node)
    if arguments.command == "down":
        return down()
    return status()


if __name__ == "__main__":
    sys.exit(main())
