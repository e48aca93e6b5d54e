"""Cold and warm latency of one review with each remote source, in this process.

`python -m bench.sources` (PYTHONPATH at the repository). For each source the
webhook is built from a config whose one remote source points at a local
stand-in answering at once (or a real git repository); the other sources are
the static example data. "cold": the first review of a fresh webhook (empty
caches, so the source is asked); "warm": the median of later reviews of the
same experiment (the caches answer). The stand-ins add no delay, so cold
numbers are this code plus one loopback round trip per call, not Google's.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from harness.builders import EXAMPLES, argo_pod, commit, review_of, utc
from harness.gitrepos import Upstream
from harness.standins.artifactregistry import ArtifactRegistryStandIn
from harness.standins.base import serving
from harness.standins.bigquery import BigQueryStandIn, bigquery_source
from harness.standins.github import GithubStandIn
from harness.standins.registry import RegistryStandIn
from webhook.config import parse_config
from webhook.core.review import parse_review
from webhook.wiring import Wiring

WARM_RUNS = 200
SLUG = "my-experiment"


def config_with(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((EXAMPLES / "config.yaml").read_text())
    change(config)
    return config


def measure(name: str, config: dict[str, Any]) -> None:
    admitter = Wiring(parse_config(config, EXAMPLES)).admitter
    review = parse_review(review_of(argo_pod(SLUG)))
    started = time.perf_counter()
    first = admitter.admit(review)
    cold = time.perf_counter() - started
    if "patch" not in first.response["response"]:
        raise RuntimeError(f"{name}: not pinned: {first.response}")
    warm = []
    for _ in range(WARM_RUNS):
        started = time.perf_counter()
        admitter.admit(review)
        warm.append(time.perf_counter() - started)
    print(f"{name:<18} cold {cold * 1000:8.2f} ms   warm {statistics.median(warm) * 1000:6.3f} ms")


@contextmanager
def git_upstream() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as scratch:
        upstream = Upstream(Path(scratch) / "metric-hub")
        for month in range(1, 13):
            upstream.commit(f"change {month}", f"2023-{month:02d}-01T00:00:00Z")
        yield upstream.path


def main() -> None:
    print(f"one review of {SLUG}: cold (fresh webhook) and warm (median of {WARM_RUNS})")
    measure("static (all)", config_with(lambda c: None))

    bigquery = BigQueryStandIn()
    bigquery.add("enrollments_my_experiment", utc("2024-01-01T00:00:00Z"))
    with serving(bigquery) as stand_in:
        measure("bigquery", config_with(lambda c: c.update(
            enrollments=bigquery_source(stand_in.url), cache={"prefetchEnrollments": False}
        )))  # fmt: skip

    registry = ArtifactRegistryStandIn()
    with serving(registry) as stand_in:
        measure("artifactregistry", config_with(
            lambda c: c["images"][0].update(history=registry.source(stand_in.url))
        ))  # fmt: skip

    v2 = RegistryStandIn("moz-fx-data-experiments/jetstream", google=True)
    for month in range(1, 10):
        v2.add_image(f"m{month}", f"2024-0{month}-01T00:00:00Z", [f"v{month}"],
                     uploaded_ms=1704067200000 + month * 2_592_000_000)  # fmt: skip
    with serving(v2) as stand_in:
        measure("oci (9 tags)", config_with(lambda c: c["images"][0].update(history={
            "type": "oci", "endpoint": stand_in.url,
        })))  # fmt: skip
        measure("gcr (9 tags)", config_with(lambda c: c["images"][0].update(
            history={"type": "gcr", "credentials": "anonymous", "endpoint": stand_in.url},
        )))  # fmt: skip

    commits = [commit(f"c{m}", f"2023-{m:02d}-01T00:00:00Z") for m in range(12, 0, -1)]
    with serving(GithubStandIn(commits)) as stand_in:
        measure("github", config_with(lambda c: c["configRepos"][0].update(history={
            "type": "github", "repo": "mozilla/metric-hub", "endpoint": stand_in.url,
        })))  # fmt: skip

    with git_upstream() as upstream, tempfile.TemporaryDirectory() as mirrors:
        measure("git (12 commits)", config_with(lambda c: c["configRepos"][0].update(history={
            "type": "git", "url": str(upstream), "mirrorDir": mirrors,
        })))  # fmt: skip


if __name__ == "__main__":
    main()
