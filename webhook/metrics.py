"""Prometheus metrics, correct across gunicorn workers (multiprocess mode).

Every metric here has labels, so no value exists until a worker first uses
it: `enable_multiprocess` can then switch the value class after the
configuration is read, before any worker forks. Names follow Prometheus
conventions (`_total`, `_seconds`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client import multiprocess as _multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

ADMISSIONS = Counter(
    "jetstream_pin_admissions",
    "Admission reviews answered, by outcome and pin reason.",
    ["outcome", "reason"],
)
ADMISSION_SECONDS = Histogram(
    "jetstream_pin_admission_duration_seconds",
    "Time to answer one admission review (parse, decide, patch), by outcome.",
    ["outcome"],
    buckets=_FAST,
)
BACKEND_CALLS = Counter(
    "jetstream_pin_backend_calls",
    "Calls to a backend source (after the caches), by source kind and result.",
    ["source", "result"],
)
BACKEND_SECONDS = Histogram(
    "jetstream_pin_backend_duration_seconds",
    "Duration of backend calls, by source kind.",
    ["source"],
    buckets=_FAST,
)
CACHE_REQUESTS = Counter(
    "jetstream_pin_cache_requests",
    "Cache lookups, by cache and result (hit or miss).",
    ["cache", "result"],
)
WORKFLOW_RECORDS = Counter(
    "jetstream_pin_workflow_records",
    "Decisions written onto Workflows, by result: written, conflict (another replica's "
    "stood; this one's first pod ran its own), failed, too-large, dropped (queue full).",
    ["result"],
)
OVERLOADED = Counter(
    "jetstream_pin_admissions_overloaded",
    "Reviews answered by the failure policy because no admission thread was free "
    "within the deadline.",
    ["cause"],
)
CONNECTIONS_CLOSED_FOR_ROOM = Counter(
    "jetstream_pin_connections_closed_for_room",
    "Idle connections closed because their port was at its connection bound and a new "
    "client was waiting, by port (admission or admin).",
    ["port"],
)
REQUESTS_REFUSED = Counter(
    "jetstream_pin_requests_refused",
    "Requests refused with 503 before their body was read, by the bound that was reached.",
    ["bound"],
)
LOG_LINES_DROPPED = Counter(
    "jetstream_pin_log_lines_dropped",
    "Log lines dropped because the log queue was full (its output stalled).",
    ["logger"],
)
IMAGE_HISTORY_AGE = Gauge(
    "jetstream_pin_image_history_age_seconds",
    "Seconds since the image history of a repository was last listed successfully "
    "(the freshest worker's view).",
    ["repository"],
    multiprocess_mode="livemin",
)

ENROLLMENT_LISTING_AGE = Gauge(
    "jetstream_pin_enrollment_listing_age_seconds",
    "Seconds since the enrolled experiments were last listed successfully, by source.",
    ["source"],
    multiprocess_mode="livemin",
)
CERTIFICATE_EXPIRY = Gauge(
    "jetstream_pin_certificate_expiry_timestamp_seconds",
    "When the certificate being served expires (notAfter, seconds since the epoch); "
    "a rotation that cannot be loaded leaves the one still served.",
    ["certificate"],
    multiprocess_mode="livemostrecent",  # a rotation may shorten it: newest read wins
)
CERTIFICATE_RELOAD_FAILURES = Counter(
    "jetstream_pin_certificate_reload_failures",
    "Changes of the certificate files that could not be loaded (the previous pair kept "
    "serving), counted once per change.",
    ["certificate"],
)


_children: dict[tuple[object, tuple[str, ...]], Any] = {}


def child(metric: Counter | Histogram | Gauge, *values: str) -> Any:
    """`metric.labels(*values)`, remembered: `labels()` takes a lock and validates each time.

    The admission path counts five or six values per review. Label values
    here come from fixed sets (outcomes, reasons, cache and source names), so
    the memo stays small. Like `labels()` itself, a child made before
    `enable_multiprocess` keeps its value class: nothing is counted before it.
    """
    key = (metric, values)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*values)
    return found


def enable_multiprocess(directory: Path) -> None:
    """Aggregate metrics of all gunicorn workers through files in `directory` (emptied)."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, mode=0o700)
    os.environ[MULTIPROC_ENV] = str(directory)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def worker_exited(pid: int) -> None:
    if os.environ.get(MULTIPROC_ENV):
        _multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def exposition() -> bytes:
    """The text format for a scrape: every worker's metrics when running multiprocess."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)
