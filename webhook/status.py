"""What the status page shows: the report (cached briefly) and the recent decisions.

Building the report lists every experiment (one BigQuery tables.list walk in
production), so a page load must not cost that each time: the report is kept
for `ttl` seconds, and concurrent loads wait for one computation instead of
starting their own. A failure is kept for a shorter while, so an outage
does not turn every refresh into another failing call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from webhook.inventory import Inventory, InventoryFailed
from webhook.recent import DecisionLog, RecentDecision
from webhook.report import Report, build_report

log = logging.getLogger(__name__)

REPORT_TTL = 30.0
FAILURE_TTL = 5.0
RECENT_LIMIT = 50


@dataclass(frozen=True)
class Status:
    report: Report | None
    error: str  # why there is no report
    decisions: list[RecentDecision]
    settings: Mapping[str, str] = field(default_factory=dict)


class StatusSource:
    def __init__(
        self,
        inventory: Callable[[], Inventory],
        decisions: DecisionLog,
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
        report, error = self._report()
        return Status(report, error, self.decisions.recent(RECENT_LIMIT), self.settings)

    def _report(self) -> tuple[Report | None, str]:
        with self._lock:  # one computation at a time; the others reuse it
            now = self._clock()
            if self._cached is not None and now < self._cached[0]:
                return self._cached[1], self._cached[2]
            report: Report | None = None
            error = ""
            try:
                report = build_report(self._inventory())
            except InventoryFailed as err:
                error = str(err)
            except Exception as err:
                log.exception("cannot build the report for the status page")
                error = f"internal error: {type(err).__name__}"
            ttl = self.ttl if report is not None else min(self.ttl, FAILURE_TTL)
            self._cached = (now + ttl, report, error)
            return report, error
