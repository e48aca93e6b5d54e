"""Structured logs: one JSON object per line, with Cloud Logging's `severity`.

Callers attach data with `extra={"fields": {...}}`; nothing else of the
record is copied, so a credential can only reach a log line by being put
into `fields` on purpose.
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
import sys
from datetime import UTC, datetime
from typing import Any

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


_listener: logging.handlers.QueueListener | None = None


def configure(level: str = "INFO") -> None:
    """JSON lines on stderr, written by a background thread.

    Request threads only format and enqueue: with a plain StreamHandler they
    queue on the handler's lock behind every write, which under load cost a
    quarter of the worker's time (measured with py-spy; docs/benchmarks.md).
    """
    global _listener
    if _listener is not None:
        _listener.stop()
    output = logging.StreamHandler(sys.stderr)
    output.setFormatter(JsonFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    enqueue = logging.handlers.QueueHandler(records)
    _listener = logging.handlers.QueueListener(records, output)
    _listener.start()
    atexit.register(_listener.stop)
    root = logging.getLogger()
    root.handlers[:] = [enqueue]
    root.setLevel(level)
