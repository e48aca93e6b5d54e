"""Argo's real controller creating a Jetstream burst: submit to the last pod, with and without.

`scripts/bench argo` starts a local control plane (scripts/get-kube builds it),
a BigQuery stand-in with `--experiments` enrolled experiments, jetstream-pin on
it as the chart configures it (prefetch on, decisions recorded on the
Workflow), and one Argo controller per namespace: one namespace with the
webhook registered, one without. It then submits the Jetstream-shaped
Workflow over all experiments, alternating between the two namespaces for
`--pairs` rounds, and prints each round's seconds from submit to the last pod
stored, the median ratio (with / without) from the same run, the BigQuery
calls of each pinned round and the decisions recorded on its Workflow.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

from harness.builders import EXAMPLES, utc
from harness.controlplane import argo, registration, release
from harness.controlplane.plane import ControlPlane, running_control_plane
from harness.standins.bigquery import BigQueryStandIn, bigquery_source, running_bigquery

RECORD_PREFIX = "jetstream/decision-"


def burst_workflow(count: int) -> dict[str, Any]:
    """examples/argo-workflow.yaml over `count` experiments, one date each, no parallelism cap."""
    workflow: dict[str, Any] = yaml.safe_load((EXAMPLES / "argo-workflow.yaml").read_text())
    experiments = [{"slug": f"burst-{n:04d}", "dates": ["2024-06-03"]} for n in range(count)]
    for parameter in workflow["spec"]["arguments"]["parameters"]:
        if parameter["name"] == "experiments":
            parameter["value"] = json.dumps(experiments)
    workflow["spec"].pop("parallelism", None)
    return workflow


def webhook_namespace(
    plane: ControlPlane, workdir: Path, bigquery: BigQueryStandIn, stack: ExitStack
) -> str:
    assert bigquery.stand_in is not None
    namespace = plane.namespace("bench-argo-pin")
    values = release.chart_values([namespace])
    release.install_identity(plane, "pin", values)
    folder = workdir / "pin"
    folder.mkdir()
    config = release.webhook_config(
        plane,
        folder,
        "pin",
        enrollments=bigquery_source(bigquery.stand_in.url, timeout=2),
        cache={"prefetchEnrollments": True},
    )
    config["kubernetes"]["cacheSeconds"] = 10  # the chart's default
    webhook = release.start_webhook(folder, "pin", config)
    stack.callback(webhook.running.stop)
    registration.register(
        plane,
        registration.configuration(
            "pin", webhook.mutate_url, webhook.ca_pem, plane.version, values
        ),
        namespace,
    )
    return namespace


def round_seconds(
    plane: ControlPlane, namespace: str, workflow: dict[str, Any], count: int
) -> tuple[float, str]:
    started = time.monotonic()
    name = argo.submit(plane, namespace, json.loads(json.dumps(workflow)))
    argo.wait_for_pods(plane, namespace, name, count, timeout=600)
    return time.monotonic() - started, name


def recorded(plane: ControlPlane, namespace: str, name: str, count: int) -> int:
    """Decisions on the Workflow once written (they are written in the background)."""
    deadline = time.monotonic() + 30
    while True:
        notes = argo.workflow(plane, namespace, name)["metadata"].get("annotations") or {}
        found: int = sum(key.startswith(RECORD_PREFIX) for key in notes)
        if found >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--experiments", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=3, help="rounds with and without, alternated")
    arguments = parser.parse_args()
    count = arguments.experiments
    with tempfile.TemporaryDirectory(prefix="bench-argo-") as folder, ExitStack() as stack:
        workdir = Path(folder)
        bigquery = stack.enter_context(running_bigquery())
        for number in range(count):
            bigquery.add(f"enrollments_burst_{number:04d}", utc("2024-05-30T02:00:00Z"))
        plane = stack.enter_context(running_control_plane(workdir / "control-plane"))
        release.bootstrap(plane)
        pinned = webhook_namespace(plane, workdir, bigquery, stack)
        bare = plane.namespace("bench-argo-bare")
        for namespace in (pinned, bare):
            controller = argo.start_controller(plane, namespace, workdir / namespace, {})
            stack.callback(controller.running.stop)
        workflow = burst_workflow(count)
        print(f"Kubernetes {plane.version}, Argo {argo.ARGO_VERSION}: {count} experiments, "
              f"submit to the {count}th pod stored")  # fmt: skip
        print("| round | without s | with s | ratio | tables.list | tables.get | recorded |")
        print("|---|---|---|---|---|---|---|")
        ratios = []
        for number in range(1, arguments.pairs + 1):
            without, _ = round_seconds(plane, bare, workflow, count)
            lists, gets = bigquery.lists(), bigquery.gets()
            with_webhook, name = round_seconds(plane, pinned, workflow, count)
            lists, gets = bigquery.lists() - lists, bigquery.gets() - gets
            written = recorded(plane, pinned, name, count)
            ratios.append(with_webhook / without)
            print(f"| {number} | {without:.1f} | {with_webhook:.1f} | {ratios[-1]:.2f} | "
                  f"{lists} | {gets} | {written} |")  # fmt: skip
        print(f"\nmedian ratio with / without the webhook: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
