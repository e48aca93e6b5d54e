"""The benchmark: the real server under load from another process, against a no-op baseline.

Run it with `scripts/bench` (installs wrk). Everything runs on 127.0.0.1:
the webhook under gunicorn with TLS and keep-alive, the backends as local
stand-ins (BigQuery answering after 150 ms, the Artifact Registry listing
after 1 s), the load from `wrk` (a separate C process) or, for the
count-based cold burst, from Python threads. Prints, per process model (see
bench.paired), a markdown table of each warm scenario's ratio to the no-op
on the same stack and model in alternating pairs, with the gunicorn gthread
anchor; then the cold burst (prefetch on, from /readyz ready) and the peak
RSS of a worker holding 10,000 cached experiments.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import requests

from bench.paired import (
    ANCHOR,
    MODELS,
    NOOP,
    PASS,
    PINNED,
    Model,
    Runs,
    noop_of,
    ratio_table,
    servers,
)
from harness.builders import argo_pod, fixture_review, review_of
from harness.servers import Server, remote_config, resident_bytes, running_server, workers_of
from harness.standins.artifactregistry import ArtifactRegistryStandIn, listings
from harness.standins.base import StandInServer, serving
from harness.standins.bigquery import BigQueryStandIn, running_bigquery

HERE = Path(__file__).resolve().parent
FIXTURES = ["01-create-emissary-v3.6.json", "02-create-label-slug-v3.5.json"]
BIGQUERY_DELAY = 0.150
REGISTRY_DELAY = 1.0


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wait_ready(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.session.get(f"{server.url}/readyz", timeout=5).status_code == 200:
            return
        time.sleep(0.1)
    raise RuntimeError("the webhook did not become ready")


def run_wrk(name: str, url: str, bodies: Sequence[Path], seconds: int, connections: int) -> Result:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk (scripts/bench does this)")
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(HERE / "review.lua"),
               f"{url}/mutate", "--", *map(str, bodies)]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("{"))
    data = json.loads(line)
    return Result(name, data["requests"], data["duration_us"] / 1e6, data["errors"],
                  data["p50"] / 1000, data["p99"] / 1000, data["max"] / 1000)  # fmt: skip


def check_answer(server: Server, review: dict[str, Any], patched: bool) -> None:
    body = server.post_review(review).json()["response"]
    if body["uid"] != review["request"]["uid"] or body["allowed"] is not True:
        raise RuntimeError(f"unexpected answer before the load: {body}")
    if ("patch" in body) != patched:
        raise RuntimeError(f"expected patched={patched}: {body}")


def burst(server: Server, reviews: Sequence[dict[str, Any]], concurrency: int) -> Result:
    """Send every review at once (up to `concurrency` in flight); time until the last answer."""
    local = threading.local()
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def send(review: dict[str, Any]) -> None:
        nonlocal errors
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.trust_env = False
            session.verify = str(server.ca_file)
        started = time.perf_counter()
        try:
            reply = session.post(f"{server.url}/mutate", json=review, timeout=30)
            ok = reply.status_code == 200 and reply.json()["response"].get("patch")
        except requests.RequestException:
            ok = False
        elapsed = time.perf_counter() - started
        with lock:
            latencies.append(elapsed)
            errors += 0 if ok else 1

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, reviews))
    seconds = time.perf_counter() - started
    ordered = sorted(latencies)
    return Result(
        "cold burst", len(reviews), seconds, errors,
        statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000,
        ordered[-1] * 1000,
    )  # fmt: skip


def worker_rss_kib(master: int) -> list[int]:
    """Peak resident set (VmHWM) of each gunicorn worker, children of the master."""
    return [resident_bytes(pid, peak=True) // 1024 for pid in workers_of(master)]


@contextmanager
def backends(
    tables: int,
) -> Iterator[tuple[BigQueryStandIn, ArtifactRegistryStandIn, StandInServer]]:
    registry = ArtifactRegistryStandIn()
    enrollments = BigQueryStandIn()
    base = datetime(2023, 2, 1, tzinfo=UTC)
    for n in range(tables):
        enrollments.add(f"enrollments_bench_{n}", base + timedelta(hours=13 * n % 20000))
    enrollments.add("enrollments_firefox_desktop_private_browsing_redesign_rollout", base)
    enrollments.add("enrollments_android_onboarding_notification_permission_v2", base)
    with running_bigquery(enrollments) as bigquery, serving(registry) as stand_in:
        yield bigquery, registry, stand_in


def pass_through(review: dict[str, Any]) -> dict[str, Any]:
    """The same Argo pod running another image: same size as (a) and (c), nothing to pin."""
    other = copy.deepcopy(review)
    pod = other["request"]["object"]
    pod["metadata"]["labels"].pop("jetstream/experiment-slug", None)
    for container in pod["spec"]["containers"]:
        if container["name"] == "main":
            container["image"] = "python:3.11-slim"
    return other


def write_bodies(workdir: Path, name: str, reviews: Sequence[dict[str, Any]]) -> list[Path]:
    paths = []
    for n, review in enumerate(reviews):
        path = workdir / f"{name}-{n}.json"
        path.write_text(json.dumps(review))
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--connections", type=int, default=16, help="wrk keep-alive connections")
    parser.add_argument("--pairs", type=int, default=3, help="rounds of no-op/scenario pairs")
    parser.add_argument("--warm-only", action="store_true", help="skip the cold burst and RSS")
    parser.add_argument("--burst", type=int, default=500, help="pods in the cold burst")
    parser.add_argument("--slugs", type=int, default=250, help="distinct slugs in the burst")
    parser.add_argument("--cached", type=int, default=10_000, help="experiments for the RSS run")
    parser.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also run the no-op and the webhook of the checkout DIR in the same rounds",
    )
    args = parser.parse_args(argv)
    args.against = dict(_checkout(spec) for spec in args.against)
    workdir = Path(tempfile.mkdtemp(prefix="jetstream-pin-bench-"))
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        return _run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _checkout(spec: str) -> tuple[str, Path]:
    name, sep, directory = spec.partition("=")
    root = Path(directory).resolve()
    if not sep or not name or not (root / "webhook" / "__init__.py").is_file():
        raise SystemExit(f"--against {spec!r}: give NAME=DIR, DIR a checkout of this project")
    return name, root


def _run(args: argparse.Namespace, workdir: Path) -> int:
    fixtures = [fixture_review(name) for name in FIXTURES]
    bodies = {
        PINNED: write_bodies(workdir, "fixture", fixtures),
        PASS: write_bodies(workdir, "pass", [pass_through(review) for review in fixtures]),
    }
    with backends(args.slugs) as (bigquery, registry, stand_in):
        assert bigquery.stand_in is not None
        bq_url, reg_url = bigquery.stand_in.url, stand_in.url
        bigquery.delay, registry.delay = BIGQUERY_DELAY, REGISTRY_DELAY
        for model in MODELS:
            runs = warm_pairs(
                args, workdir, partial(remote_config, bigquery_url=bq_url, registry_url=reg_url,
                                       prefetch=True), model, fixtures, bodies)  # fmt: skip
            print(ratio_table(model, runs))
            print()
        if args.warm_only:
            return 0

        cold_dir = workdir / "cold"
        gets_before, listings_before = bigquery.gets(), listings(stand_in)
        with running_server(cold_dir, remote_config(cold_dir, bq_url, reg_url, True)) as cold:
            wait_ready(cold)
            ready_gets = bigquery.gets() - gets_before
            reviews = [review_of(argo_pod(f"bench-{n % args.slugs}")) for n in range(args.burst)]
            result = burst(cold, reviews, concurrency=100)
        bigquery_calls = bigquery.gets() - gets_before - ready_gets
        registry_calls = listings(stand_in) - listings_before
        print(f"cold burst, prefetch on, from /readyz ready: {args.burst} pods for {args.slugs} "
              f"slugs admitted in {result.seconds:.2f} s ({result.errors} errors; p50 "
              f"{result.p50_ms:.0f} ms, p99 {result.p99_ms:.0f} ms); {bigquery_calls} BigQuery "
              f"tables.get during the burst ({ready_gets} before ready); "
              f"{registry_calls} registry listing(s)")  # fmt: skip

    rss = measure_rss(workdir, args.cached)
    print(f"peak RSS per worker with {args.cached} experiments cached: "
          f"{', '.join(f'{kib / 1024:.1f} MiB' for kib in rss)}")  # fmt: skip
    return 0


def warm_pairs(
    args: argparse.Namespace,
    workdir: Path,
    configure: Callable[[Path], dict[str, Any]],
    model: Model,
    fixtures: Sequence[dict[str, Any]],
    bodies: dict[str, list[Path]],
) -> dict[str, Runs]:
    """`args.pairs` rounds; each round's no-op run is the pair of every scenario in it.

    The order alternates from round to round (no-op first, then last), so a
    trend in the machine's load favours neither side.
    """
    with ExitStack() as stack:
        started = dict(servers(stack, workdir, configure, model, args.against))
        webhook = started[PINNED]
        plan = [(NOOP, started[NOOP], PINNED), (PINNED, webhook, PINNED),
                (PASS, webhook, PASS), (ANCHOR, started[ANCHOR], PINNED)]  # fmt: skip
        for label in args.against:
            plan += [(f"{NOOP} @{label}", started[f"{NOOP} @{label}"], PINNED),
                     (f"{PINNED} @{label}", started[f"{PINNED} @{label}"], PINNED)]  # fmt: skip
        runs = {name: Runs() for name, _server, _kind in plan}
        for name, server, _kind in plan:
            if name.startswith(PINNED):
                wait_ready(server)
                for review in fixtures:
                    check_answer(server, review, patched=True)
        for _name, server, kind in plan:  # warm-up: connections, caches, first-call costs
            run_wrk("warm-up", server.url, bodies[kind], 1, args.connections)
        for round_ in range(args.pairs):
            results: dict[str, Result] = {}
            for name, server, kind in plan if round_ % 2 == 0 else reversed(plan):
                results[name] = run_wrk(name, server.url, bodies[kind], args.seconds,
                                        args.connections)  # fmt: skip
            for name, result in results.items():
                runs[name].rates.append(result.rate)
                runs[name].p99s.append(result.p99_ms)
                runs[name].errors += result.errors
                if name != noop_of(name):
                    runs[name].ratios.append(result.rate / results[noop_of(name)].rate)
    return runs


def measure_rss(workdir: Path, count: int) -> list[int]:
    """Warm a fresh webhook with `count` distinct enrolled experiments, then read VmHWM."""
    with backends(count) as (bigquery, _registry, stand_in):
        assert bigquery.stand_in is not None
        rss_dir = workdir / "rss"
        config = remote_config(rss_dir, bigquery.stand_in.url, stand_in.url, prefetch=True)
        with running_server(rss_dir, config) as server:
            wait_ready(server)
            reviews = [review_of(argo_pod(f"bench-{n}")) for n in range(count)]
            result = burst(server, reviews, concurrency=16)
            if result.errors:
                raise RuntimeError(f"{result.errors} errors while warming {count} experiments")
            return worker_rss_kib(server.process.pid)


if __name__ == "__main__":
    sys.exit(main())
