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

from cryptography import x509
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
    "When the serving certificate expires (notAfter, seconds since the epoch); "
    "re-read when its file changes.",
    ["certificate"],
    multiprocess_mode="livemostrecent",  # a rotation may shorten it: newest read wins
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


class CertificateExpiry:
    """The notAfter of a PEM certificate file, parsed again only when the file changes.

    A rotated Secret volume swaps a symlink, so the (inode, size, mtime) of the
    file it points to tells a rotation apart from the same file read twice.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._expiry: float | None = None

    def current(self) -> float | None:
        """None while the file is missing or unreadable (the server will not serve then)."""
        try:
            stat = self.path.stat()
            identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            if identity != self._seen:
                cert = x509.load_pem_x509_certificate(self.path.read_bytes())
                self._expiry = cert.not_valid_after_utc.timestamp()
                self._seen = identity
        except (OSError, ValueError):
            return None
        return self._expiry


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
