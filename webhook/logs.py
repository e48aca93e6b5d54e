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
import logging.handlers
import os
import sys
import time
import weakref
from datetime import UTC, datetime
from queue import Full, Queue
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


class BatchingHandler(logging.handlers.QueueHandler):
    """The caller's side: appends the record to a bounded queue; a `BatchWriter` writes it.

    With a plain StreamHandler, request threads queue on the handler's lock
    behind every write (a quarter of a worker's time under load, measured with
    py-spy). Here a request thread only appends the record: it is not even
    formatted (`prepare` hands it on as it is), the writer thread does that.

    The queue is bounded: when the output stalls (a full pipe nobody reads),
    new lines are dropped and counted (`jetstream_pin_log_lines_dropped_total`)
    instead of growing the process without limit or blocking the caller,
    whether an admission or gunicorn's master replacing a worker.

    Fork-safe: a forked child (a gunicorn worker) gets a queue and a writer
    of its own; the parent's pending lines stay the parent's to write.
    """

    queue: Queue[Any]  # records, and the writer's stop sentinel

    def __init__(
        self, stream: Output, formatter: logging.Formatter, max_pending: int = MAX_PENDING
    ) -> None:
        super().__init__(Queue(max_pending))
        self.stream = stream
        self.setFormatter(formatter)
        self.dropped = 0
        self.closed = False
        self._start_writer()
        _FORK_SAFE.add(self)

    def _start_writer(self) -> None:
        self._writer = BatchWriter(self)
        self._writer.start()

    def _restart_after_fork(self) -> None:
        """The child's own queue and writer: the parent's writer may hold the parent's queue."""
        self.queue = Queue(self.queue.maxsize)
        self._start_writer()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record  # formatted by the writer thread, not the caller

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except Full:
            self.dropped += 1
            metrics.LOG_LINES_DROPPED.labels(record.name).inc()

    def close(self) -> None:
        """Write what is pending, then stop the writer (if the output still moves)."""
        self.closed = True
        self._writer.stop()
        super().close()


class BatchWriter(logging.handlers.QueueListener):
    """The writer thread: wakes at most every `BATCH_SECONDS` and writes what is pending at once.

    With one wake-up per record, request threads would pay a thread switch
    each. Instead, after the first record of a batch the writer waits
    `BATCH_SECONDS`, takes that record and everything queued meanwhile,
    formats each into `lines`, and writes them in one write when the next
    batch starts (or the writer stops). `dequeue` also returns
    QueueListener's sentinel (None), which ends the thread.
    """

    queue: Queue[Any]

    def __init__(self, handler: BatchingHandler) -> None:
        super().__init__(handler.queue)
        self.handler = handler
        self.lines: list[str] = []  # the batch, formatted
        self._left = 0  # records of the batch still to take

    def start(self) -> None:
        super().start()
        assert self._thread is not None
        self._thread.name = "logs"

    def dequeue(self, block: bool) -> logging.LogRecord:
        if self._left == 0:
            self._write()
            first: logging.LogRecord = self.queue.get(block)
            time.sleep(BATCH_SECONDS)
            self._left = self.queue.qsize()
            return first
        self._left -= 1
        record: logging.LogRecord = self.queue.get(block)
        return record

    def handle(self, record: logging.LogRecord) -> None:
        """The record's line into the batch, by the handler's formatter. (Through a
        StreamHandler, its lock, filters and flush cost about 2 us more per line.)"""
        try:
            self.lines.append(self.handler.format(record) + "\n")
        except Exception:
            self.handler.handleError(record)

    def stop(self) -> None:
        """Bounded waits: a writer stuck on a stalled output is left behind, not joined."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        with contextlib.suppress(Full):
            self.queue.put(None, timeout=5)  # QueueListener's sentinel: the thread ends
        thread.join(timeout=5)
        if not thread.is_alive():
            self._write()  # the lines taken before the sentinel
        self._thread = None

    def _write(self) -> None:
        if not self.lines:
            return
        lines, self.lines = self.lines, []
        try:
            self.handler.stream.write("".join(lines))
            self.handler.stream.flush()
        except OSError:  # the output is gone (EPIPE): nothing left to tell
            self.handler.dropped += len(lines)


_FORK_SAFE: weakref.WeakSet[BatchingHandler] = weakref.WeakSet()


def _writers_after_fork() -> None:
    for handler in list(_FORK_SAFE):
        if not handler.closed:
            handler._restart_after_fork()


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
