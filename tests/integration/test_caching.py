"""Bursts against the real webhook: backend calls counted at the stand-ins.

One worker process (the default) with 16 threads; 200 concurrent reviews for
50 distinct experiments while BigQuery answers after 200 ms and the registry
listing after 500 ms, so misses for one key really do overlap.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests

from harness.builders import argo_pod, review_of, utc
from harness.servers import Server, remote_config, running_server
from harness.standins.artifactregistry import ArtifactRegistryStandIn, listings
from harness.standins.base import StandInServer, serving
from harness.standins.bigquery import BigQueryStandIn, running_bigquery

SLUGS = [f"burst-experiment-{n}" for n in range(50)]


@contextmanager
def backends() -> Iterator[tuple[BigQueryStandIn, StandInServer, ArtifactRegistryStandIn]]:
    registry = ArtifactRegistryStandIn()
    registry.delay = 0.5
    with running_bigquery() as bigquery, serving(registry) as registry_stand_in:
        for n, slug in enumerate(SLUGS):
            table = "enrollments_" + slug.replace("-", "_")
            bigquery.add(table, utc("2023-03-01T00:00:00Z") + timedelta(days=7 * n))
        bigquery.delay = 0.2
        yield bigquery, registry_stand_in, registry


def burst(server: Server) -> list[dict[str, Any]]:
    reviews = [review_of(argo_pod(SLUGS[n % len(SLUGS)])) for n in range(200)]

    def send(review: dict[str, Any]) -> dict[str, Any]:
        session = requests.Session()
        session.trust_env = False
        session.verify = str(server.ca_file)
        body: dict[str, Any] = session.post(f"{server.url}/mutate", json=review, timeout=30).json()[
            "response"
        ]
        assert body["uid"] == review["request"]["uid"]
        return body

    with ThreadPoolExecutor(max_workers=200) as pool:
        return list(pool.map(send, reviews))


def test_cold_burst_one_call_per_slug_and_one_listing(tmp_path: Path) -> None:
    with backends() as (bigquery, registry, _):
        assert bigquery.stand_in is not None
        settings = remote_config(tmp_path, bigquery.stand_in.url, registry.url, prefetch=False)
        with running_server(tmp_path, settings) as server:
            answers = burst(server)
        assert all(a["allowed"] and "patch" in a for a in answers)
        assert bigquery.gets() == 50
        assert bigquery.lists() == 0
        assert listings(registry) == 1


def test_warm_prefetch_makes_no_per_slug_call(tmp_path: Path) -> None:
    with backends() as (bigquery, registry, _):
        assert bigquery.stand_in is not None
        settings = remote_config(tmp_path, bigquery.stand_in.url, registry.url, prefetch=True)
        with running_server(tmp_path, settings) as server:
            deadline = time.monotonic() + 30
            while server.session.get(f"{server.url}/readyz", timeout=5).json() != {
                "status": "ready",
                "detail": "ready",
            }:  # image history and enrollment listing both warm
                assert time.monotonic() < deadline, "the prefetch never completed"
                time.sleep(0.05)
            answers = burst(server)
        assert all(a["allowed"] and "patch" in a for a in answers)
        assert bigquery.gets() == 0
        assert bigquery.lists() == 1
        assert listings(registry) == 1
