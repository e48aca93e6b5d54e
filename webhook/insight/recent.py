"""The webhook's recent decisions, seen from every gunicorn worker.

Admissions are decided in several worker processes, and the status page may
be served by any of them. So each worker appends its decisions to a small
file of its own (`decisions-<pid>.jsonl`) in a private directory that the
master process creates before forking, and the page reads every file there.

- Bounded: a worker keeps its newest `keep` entries in memory and rewrites
  its file with only those (write + rename, so readers never see a torn
  file).
- Off the request path: recording only appends in memory; a background
  thread writes the file at most every `flush_every` seconds (and at exit),
  so admissions never wait on the disk. The page sees a decision of another
  worker within that interval.
- No locks between processes: each file has one writer.
- A worker that died leaves its file behind; the next worker to record
  adopts those entries (it renames the file first, so two new workers
  cannot both take it) and removes it.
- Only real decisions: dry-run reviews and pods that are not experiment
  pods are never recorded.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from webhook.admission.admitter import Outcome, Result
from webhook.core.review import AdmissionRequest
from webhook.core.times import utc_now

log = logging.getLogger(__name__)

PREFIX = "decisions-"
SUFFIX = ".jsonl"
KEEP = 200
FLUSH_SECONDS = 0.25
NOT_RECORDED = frozenset({Outcome.IGNORED, Outcome.PASS_THROUGH})
_LIMITS = {"slug": 256, "outcome": 40, "reason": 40, "namespace": 63, "pod": 253, "detail": 400}
_MAX_IMAGES = 8
_MAX_IMAGE = 300


@dataclass(frozen=True)
class RecentDecision:
    time: datetime
    slug: str
    outcome: str
    reason: str  # empty when the pod was refused or a lookup failed
    images: tuple[str, ...]  # what the targets run after the decision
    namespace: str = ""
    pod: str = ""
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat(),
            "slug": self.slug,
            "outcome": self.outcome,
            "reason": self.reason,
            "images": list(self.images),
            "namespace": self.namespace,
            "pod": self.pod,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, raw: Any) -> RecentDecision | None:
        """None for anything that is not an entry this module wrote."""
        if not isinstance(raw, dict):
            return None
        try:
            when = datetime.fromisoformat(raw["time"])
            images = raw.get("images", [])
            if when.tzinfo is None or not isinstance(images, list):
                return None
            texts = {name: raw.get(name, "") for name in _LIMITS}
            if not all(isinstance(v, str) for v in texts.values()):
                return None
            return cls(when, images=tuple(str(i) for i in images), **texts)
        except (KeyError, TypeError, ValueError):
            return None


def from_result(request: AdmissionRequest, result: Result, now: datetime) -> RecentDecision | None:
    """The entry for one admission (bounded when recorded); None for what is not recorded."""
    if request.dry_run or result.outcome in NOT_RECORDED or result.facts is None:
        return None
    facts = result.facts
    decision = result.decision
    images: list[str] = []
    reason = ""
    if decision is not None:
        reason = str(decision.reason)
        images = [f"{repo}@{c.image.digest}" for repo, c in decision.choices.items()]
        if not images:  # already pinned, or recognised from the pod's own annotations
            images = list(dict.fromkeys(t.image for t in facts.targets))
    return RecentDecision(
        time=now,
        slug=facts.slug or "",
        outcome=str(result.outcome),
        reason=reason,
        images=tuple(images),
        namespace=request.namespace,
        pod=facts.name or request.name,
        detail=result.detail,
    )


def bounded(entry: RecentDecision) -> RecentDecision:
    """Pods are untrusted: no field of an entry grows without bound (most need no cut)."""
    if (
        len(entry.images) <= _MAX_IMAGES
        and all(len(i) <= _MAX_IMAGE for i in entry.images)
        and all(len(getattr(entry, name)) <= limit for name, limit in _LIMITS.items())
    ):
        return entry
    texts = {name: _cut(getattr(entry, name), limit) for name, limit in _LIMITS.items()}
    images = tuple(_cut(i, _MAX_IMAGE) for i in entry.images[:_MAX_IMAGES])
    return RecentDecision(entry.time, images=images, **texts)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RecentDecisions:
    """Record in this process, read across all of them. `directory=None`: this process only."""

    def __init__(
        self,
        directory: Path | None,
        keep: int = KEEP,
        clock: Callable[[], datetime] = utc_now,
        pid: Callable[[], int] = os.getpid,
        flush_every: float = FLUSH_SECONDS,
    ) -> None:
        self.directory = directory
        self.keep = keep
        self.clock = clock
        self.flush_every = flush_every
        self._pid = pid
        self._entries: deque[RecentDecision] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._adopted = False
        self._dirty = False
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        self._flusher_pid = 0

    def record_result(self, request: AdmissionRequest, result: Result) -> None:
        """Called after every admission; a failure here never fails the admission."""
        try:
            entry = from_result(request, result, self.clock())
            if entry is not None:
                self.record(entry)
        except Exception:
            log.exception("cannot record the decision for %s", request.uid)

    def record(self, entry: RecentDecision) -> None:
        """Keep the entry; the file is written by a background thread, off the request path."""
        with self._lock:
            if self.directory is not None and not self._adopted:
                self._adopt_orphans()
                self._adopted = True
            self._entries.append(bounded(entry))
            if self.directory is None:
                return
            self._dirty = True
            self._start_flusher()
        if not self._wake.is_set():  # set() takes a lock and notifies: once per interval
            self._wake.set()

    def recent(self, limit: int = 50) -> list[RecentDecision]:
        """The newest entries of every worker, newest first."""
        if self.directory is None:
            with self._lock:
                entries = list(self._entries)
        else:
            self.flush()
            entries = list(_read_all(self.directory))
        return sorted(entries, key=lambda e: e.time, reverse=True)[:limit]

    def flush(self) -> None:
        """Write this process's entries now (the flusher does it within `flush_every`).

        A write that fails (a full or read-only directory) raises, and leaves the
        entries to be written again next time.
        """
        with self._write_lock:
            with self._lock:
                if not self._dirty or self.directory is None:
                    return
                entries = list(self._entries)
                self._dirty = False
            try:
                self._rewrite(entries)
            except OSError:
                with self._lock:
                    self._dirty = True
                raise

    def _start_flusher(self) -> None:
        # Started in the process that records: threads do not survive a fork.
        if self._flusher is not None and self._flusher_pid == os.getpid():
            return
        self._flusher_pid = os.getpid()
        self._flusher = threading.Thread(target=self._flush_forever, name="decisions", daemon=True)
        self._flusher.start()
        atexit.register(self._flush_at_exit)

    def _flush_at_exit(self) -> None:
        with contextlib.suppress(OSError):  # the flusher has said why already
            self.flush()

    def _flush_forever(self) -> None:
        failing = ""  # the error of the last write, logged once until a write succeeds
        while True:
            self._wake.wait()
            time.sleep(self.flush_every)  # one write for every decision of the interval
            self._wake.clear()
            try:
                self.flush()
            except OSError as err:
                if str(err) != failing:
                    failing = str(err)
                    log.error("cannot write the recent decisions: %s", err)
                continue
            except Exception:
                log.exception("cannot write the recent decisions")
                continue
            if failing:
                failing = ""
                log.info("the recent decisions are written again")

    def _path(self) -> Path:
        assert self.directory is not None
        return self.directory / f"{PREFIX}{self._pid()}{SUFFIX}"

    def _rewrite(self, entries: Iterable[RecentDecision]) -> None:
        """Write + rename, so a reader never sees a torn file."""
        path = self._path()
        temporary = path.with_name(f".{path.name}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for entry in entries:
                handle.write(json.dumps(entry.to_json(), separators=(",", ":")) + "\n")
        os.replace(temporary, path)

    def _adopt_orphans(self) -> None:
        assert self.directory is not None
        mine = self._pid()
        adopted: list[RecentDecision] = []
        for path in self.directory.glob(f"{PREFIX}*{SUFFIX}"):
            pid = _pid_of(path)
            if pid is None or (pid != mine and _alive(pid)):
                continue
            if pid == mine:  # a reused pid: that file is about to be rewritten as ours
                adopted += _read_file(path)
                continue
            claimed = path.with_name(f".adopting-{mine}-{path.name}")
            try:
                path.rename(claimed)  # atomic: only one adopter wins
            except OSError:
                continue
            adopted += _read_file(claimed)
            claimed.unlink(missing_ok=True)
        if adopted:
            current = list(self._entries)
            self._entries.clear()
            self._entries.extend(sorted(adopted + current, key=lambda e: e.time))
            self._dirty = True


def _pid_of(path: Path) -> int | None:
    text = path.name.removeprefix(PREFIX).removesuffix(SUFFIX)
    return int(text) if text.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_all(directory: Path) -> Iterator[RecentDecision]:
    for path in directory.glob(f"{PREFIX}*{SUFFIX}"):
        yield from _read_file(path)


def _read_file(path: Path) -> list[RecentDecision]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []  # rotated or adopted meanwhile
    return list(_parse(text.splitlines()))


def _parse(lines: Iterable[str]) -> Iterator[RecentDecision]:
    for line in lines:
        try:
            entry = RecentDecision.from_json(json.loads(line))
        except ValueError:
            continue
        if entry is not None:
            yield entry
