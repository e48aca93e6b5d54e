"""What the status page shows: the report (cached briefly) and the recent decisions.

Building the report lists every experiment (one BigQuery tables.list walk in
production), so a page load must not cost that each time: the report is kept
for `ttl` seconds. One thread computes it at a time; page loads meanwhile get
the previous report (or a "being computed" note) at once instead of waiting,
because they share the worker's threads with admissions. A failure is kept
for a shorter while, so an outage does not turn every refresh into another
failing call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from webhook.config import ConfigError
from webhook.insight.inventory import Inventory, InventoryFailed
from webhook.insight.recent import RecentDecision, RecentDecisions
from webhook.insight.report import Report, build_report

log = logging.getLogger(__name__)

REPORT_TTL = 30.0
FAILURE_TTL = 5.0
RECENT_LIMIT = 50
BEING_COMPUTED = "the report is being computed; reload in a moment"


@dataclass(frozen=True)
class Status:
    report: Report | None
    error: str  # why there is no report
    decisions: list[RecentDecision]
    settings: Mapping[str, str] = field(default_factory=dict)
    decisions_error: str = ""  # why there are no recent decisions (the directory failed)


class StatusSource:
    def __init__(
        self,
        inventory: Callable[[], Inventory],
        decisions: RecentDecisions,
        settings: Mapping[str, str],
        ttl: float = REPORT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inventory = inventory
        self.decisions = decisions
        self.settings = dict(settings)
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, Report | None, str] | None = None

    def current(self) -> Status:
        """Always a page: a decisions directory that cannot be written or read (full,
        read-only) leaves the report and says why the decisions are missing."""
        report, error = self._report()
        try:
            decisions, unavailable = self.decisions.recent(RECENT_LIMIT), ""
        except OSError as err:
            decisions, unavailable = [], f"{err.strerror or err}: {err.filename or ''}".strip()
        return Status(report, error, decisions, self.settings, unavailable)

    def _report(self) -> tuple[Report | None, str]:
        cached = self._cached
        if cached is not None and self._clock() < cached[0]:
            return cached[1], cached[2]
        if not self._lock.acquire(blocking=False):  # another thread is computing it
            if cached is not None:
                return cached[1], cached[2]
            return None, BEING_COMPUTED
        try:
            return self._compute()
        finally:
            self._lock.release()

    def _compute(self) -> tuple[Report | None, str]:
        report: Report | None = None
        error = ""
        try:
            report = build_report(self._inventory())
        except (InventoryFailed, ConfigError) as err:
            error = str(err)
        except Exception as err:
            log.exception("cannot build the report for the status page")
            error = f"internal error: {type(err).__name__}"
        ttl = self.ttl if report is not None else min(self.ttl, FAILURE_TTL)
        self._cached = (self._clock() + ttl, report, error)
        return report, error
