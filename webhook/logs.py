"""Structured logs: one JSON object per line, with Cloud Logging's `severity`.

Callers attach data with `extra={"fields": {...}}`; nothing else of the
record is copied, so a credential can only reach a log line by being put
into `fields` on purpose.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import logging
import os
import queue
import sys
import threading
import time
import weakref
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from webhook import metrics

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


class JsonFormatter(logging.Formatter):
    """Written by orjson: a decision line took 12.6 us with `json.dumps`, 2 us this way.

    Lines are compact JSON (no spaces after `,` and `:`). Whatever orjson
    cannot write (keys that are not strings, integers beyond 64 bits) is
    written by the standard library, as before.
    """

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
        try:
            return orjson.dumps(entry, default=str).decode()
        except TypeError:
            return json.dumps(entry, default=str)


LEVEL_ENV = "JETSTREAM_PIN_LOG_LEVEL"
BATCH_SECONDS = 0.01
MAX_PENDING = 10000  # lines waiting for the writer; a stalled output drops beyond this
PIPE_BUF = 4096  # a pipe write of at most this many bytes is atomic (POSIX: at least 512)


class Output(Protocol):
    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class FdOutput:
    """Text written straight to a file descriptor (`os.write`), whole lines of at most
    PIPE_BUF bytes to a write where they fit.

    Not through `sys.stderr`: its buffer has a lock, which a writer blocked on a
    full pipe holds, and a process forked meanwhile (gunicorn's next worker)
    inherits it held and can never write again. And as the master and its
    workers share one pipe, writes of whole lines within PIPE_BUF keep their
    lines from interleaving.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, text: str, /) -> int:
        data = memoryview(text.encode("utf-8", "backslashreplace"))
        start = 0
        while start < len(data):
            end = _line_end(data, start)
            while start < end:
                start += os.write(self.fd, data[start:end])
        return len(text)

    def flush(self) -> None:
        return None


def _line_end(data: memoryview, start: int) -> int:
    """Where the write from `start` ends: the last line end within PIPE_BUF, else the next."""
    if len(data) - start <= PIPE_BUF:
        return len(data)
    raw = data.obj
    assert isinstance(raw, bytes)
    cut = raw.rfind(b"\n", start, start + PIPE_BUF)
    if cut < 0:
        cut = raw.find(b"\n", start + PIPE_BUF)
    return len(data) if cut < 0 else cut + 1


class BatchingHandler(logging.Handler):
    """Hands records to one writer thread that formats and writes them in batches.

    With a plain StreamHandler, request threads queue on the handler's lock
    behind every write (a quarter of a worker's time under load, measured with
    py-spy); with one wake-up of a writer thread per record, they pay a thread
    switch each. Here a request thread only appends the record; the writer
    wakes at most every `BATCH_SECONDS` and writes everything pending at once.

    The queue is bounded: when the output stalls (a full pipe nobody reads),
    new lines are dropped and counted (`jetstream_pin_log_lines_dropped_total`)
    instead of growing the process without limit or blocking the caller,
    whether an admission or gunicorn's master replacing a worker.

    Fork-safe: a forked child (a gunicorn worker) gets a queue and a writer
    of its own; the parent's pending lines stay the parent's to write.
    """

    def __init__(
        self, stream: Output, formatter: logging.Formatter, max_pending: int = MAX_PENDING
    ) -> None:
        super().__init__()
        self.stream = stream
        self.setFormatter(formatter)
        self.dropped = 0
        self.closed = False
        self._max_pending = max_pending
        self._start_writer()
        _FORK_SAFE.add(self)

    def _start_writer(self) -> None:
        self._records: queue.Queue[logging.LogRecord | None] = queue.Queue(self._max_pending)
        self._writer = threading.Thread(target=self._write_forever, name="logs", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._records.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            metrics.LOG_LINES_DROPPED.labels(record.name).inc()

    def close(self) -> None:
        """Write what is pending, then stop the writer (if the output still moves)."""
        self.closed = True
        if self._writer.is_alive():
            with contextlib.suppress(queue.Full):
                self._records.put(None, timeout=5)
            self._writer.join(timeout=5)
        super().close()

    def _write_forever(self) -> None:
        while True:
            batch = [self._records.get()]
            time.sleep(BATCH_SECONDS)
            while True:
                try:
                    batch.append(self._records.get_nowait())
                except queue.Empty:
                    break
            lines = []
            for record in batch:
                if record is not None:
                    try:
                        lines.append(self.format(record) + "\n")
                    except Exception:
                        self.handleError(record)
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except OSError:  # the output is gone (EPIPE): nothing left to tell
                self.dropped += len(lines)
            if None in batch:
                return


_FORK_SAFE: weakref.WeakSet[BatchingHandler] = weakref.WeakSet()


def _writers_after_fork() -> None:
    for handler in list(_FORK_SAFE):
        if not handler.closed:
            handler._start_writer()


os.register_at_fork(after_in_child=_writers_after_fork)

_handler: BatchingHandler | None = None


def shared_handler() -> BatchingHandler:
    """This process's one handler, on stderr: the root logger's and gunicorn's."""
    global _handler
    if _handler is None or _handler.closed:
        _handler = BatchingHandler(_stderr(), JsonFormatter())
        atexit.register(_handler.close)
    return _handler


def _stderr() -> Output:
    try:
        return FdOutput(sys.stderr.fileno())
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return sys.stderr  # replaced by something without a descriptor (a test's capture)


def configure(level: str | None = None) -> None:
    """JSON lines on stderr through the `shared_handler`; level from $JETSTREAM_PIN_LOG_LEVEL."""
    root = logging.getLogger()
    root.handlers[:] = [shared_handler()]
    root.setLevel((level or os.environ.get(LEVEL_ENV) or "INFO").upper())
    logging.captureWarnings(True)  # warnings through the handler too, never straight to stderr
    # The JSON lines (gunicorn's too, through webhook.serving.server.GunicornLogger) never
    # show the caller's file and line or the thread: do not collect them per record
    # (the logging HOWTO's "Optimization"). The pid is still recorded; it costs
    # nothing here.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
