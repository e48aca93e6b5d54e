"""BigQuery's answers through the real webhook: a missing dataset, a malformed table.

The real server (gunicorn, TLS) reads BigQuery with the real client from a
stand-in that answers as BigQuery does (`Not found: Dataset p:d`). A missing
dataset is an outage to fix, never "not enrolled"; one malformed table costs
its own experiment only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.builders import argo_pod, review_of, utc
from harness.servers import Server, remote_config, running_server
from harness.standins.artifactregistry import ArtifactRegistryStandIn
from harness.standins.base import StandInServer, serving
from harness.standins.bigquery import BigQueryStandIn, running_bigquery
from webhook.wiring import WARMUP_GRACE_SECONDS

PROJECT = "moz-fx-data-experiments"
TYPO = f"{PROJECT}.mozanalysis_typo"


def readiness(server: Server) -> tuple[int, str]:
    reply = server.session.get(f"{server.url}/readyz", timeout=5)
    return reply.status_code, str(reply.json()["detail"])


def wait_for_readiness(server: Server, wanted: str, seconds: float = 30.0) -> tuple[int, str]:
    deadline = time.monotonic() + seconds
    seen = readiness(server)
    while wanted not in seen[1]:
        assert time.monotonic() < deadline, f"/readyz never said {wanted!r}; last: {seen}"
        time.sleep(0.1)
        seen = readiness(server)
    return seen


def pod_in(dataset: str, slug: str = "my-experiment") -> dict[str, Any]:
    pod = argo_pod(slug)
    pod["spec"]["containers"][1]["command"].append(f"--dataset_id={dataset}")
    return pod


@pytest.fixture
def backends() -> Iterator[tuple[BigQueryStandIn, StandInServer]]:
    with running_bigquery() as bigquery, serving(ArtifactRegistryStandIn()) as registry:
        bigquery.add("enrollments_my_experiment", utc("2023-01-01T00:00:00Z"))
        yield bigquery, registry


def settings(tmp_path: Path, bigquery: BigQueryStandIn, registry: StandInServer) -> dict[str, Any]:
    assert bigquery.stand_in is not None
    config = remote_config(tmp_path, bigquery.stand_in.url, registry.url, prefetch=True)
    config["enrollments"]["allowedDatasets"] = [f"{PROJECT}.mozanalysis", TYPO]
    config["server"]["drainSeconds"] = 0.1  # nothing to drain at the end of a test
    return config


def test_a_missing_dataset_keeps_the_webhook_unready_and_denies_its_pods(
    tmp_path: Path, backends: tuple[BigQueryStandIn, StandInServer]
) -> None:
    bigquery, registry = backends
    with running_server(tmp_path, settings(tmp_path, bigquery, registry)) as server:
        started = time.monotonic()
        code, detail = wait_for_readiness(server, "dataset not found")
        assert code == 503
        assert f"tables.list {TYPO}: dataset {TYPO} not found" in detail
        assert "enrollments.allowedDatasets" in detail
        # Past the warm-up grace period, when other cold sources are let through, it stays out.
        seen = []
        while time.monotonic() - started < WARMUP_GRACE_SECONDS + 2:
            seen.append(readiness(server))
            time.sleep(0.2)
        assert {code for code, _ in seen} == {503}, seen
        assert all("dataset not found" in detail for _, detail in seen), seen[-1]

        # A pod naming it is denied as an outage naming the dataset, never "not enrolled".
        denied = server.post_review(review_of(pod_in("mozanalysis_typo"))).json()["response"]
        assert denied["allowed"] is False
        assert denied["status"]["code"] == 503
        assert denied["status"]["reason"] == "ServiceUnavailable"
        message = denied["status"]["message"]
        assert "'my-experiment'" in message
        assert f"dataset {TYPO} not found" in message
        # A pod of the dataset that exists is pinned meanwhile.
        pinned = server.post_review(review_of(pod_in("mozanalysis"))).json()["response"]
        assert pinned["allowed"] is True
        assert "patch" in pinned

        # Created: the listing is retried in the background and the replica turns ready.
        bigquery.add_dataset(PROJECT, "mozanalysis_typo")
        assert wait_for_readiness(server, "ready") == (200, "ready")
        enrolled_later = server.post_review(review_of(pod_in("mozanalysis_typo"))).json()
        assert enrolled_later["response"]["allowed"] is True


def test_a_malformed_table_costs_its_own_experiment_only(
    tmp_path: Path, backends: tuple[BigQueryStandIn, StandInServer]
) -> None:
    bigquery, registry = backends
    bigquery.add("enrollments_bad_label", utc("2023-01-01T00:00:00Z"), last_updated="yesterday")
    config = settings(tmp_path, bigquery, registry)
    config["enrollments"].pop("allowedDatasets")
    with running_server(tmp_path, config) as server:
        # The listing loads with that table set apart: the webhook is warm, not let in late.
        assert wait_for_readiness(server, "ready") == (200, "ready")
        pinned = server.post_review(review_of(pod_in("mozanalysis"))).json()["response"]
        assert pinned["allowed"] is True
        assert "patch" in pinned
        assert bigquery.gets() == 0, "answered by the listing"
        denied = server.post_review(review_of(pod_in("mozanalysis", "bad-label"))).json()
        status = denied["response"]["status"]
        assert (status["code"], status["reason"]) == (503, "ServiceUnavailable")
        assert "'bad-label'" in status["message"]
        assert "last_updated='yesterday': not epoch seconds" in status["message"]
        assert bigquery.gets() == 1, "read on its own, never taken as not enrolled"
