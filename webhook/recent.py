"""The webhook's recent decisions, seen from every gunicorn worker.

Admissions are decided in several worker processes, and the status page may
be served by any of them. So each worker appends its decisions to a small
file of its own (`decisions-<pid>.jsonl`) in a private directory that the
master process creates before forking, and the page reads every file there.

- Bounded: a worker keeps its newest `keep` entries in memory and rewrites
  its file with only those (write + rename, so readers never see a torn
  file) once the file holds twice as many lines.
- No locks between processes: each file has one writer; a reader skips a
  line it cannot parse (an append in progress).
- A worker that died leaves its file behind; the next worker to record
  adopts those entries (it renames the file first, so two new workers
  cannot both take it) and removes it.
- Only real decisions: dry-run reviews and pods that are not experiment
  pods are never recorded.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from webhook.admission import Outcome, Result
from webhook.review import AdmissionRequest

log = logging.getLogger(__name__)

PREFIX = "decisions-"
SUFFIX = ".jsonl"
KEEP = 200
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
        entry = asdict(self)
        entry["time"] = self.time.isoformat()
        entry["images"] = list(self.images)
        return entry

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
    """The entry for one admission; None for what is not recorded (see module doc)."""
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
    return bounded(
        RecentDecision(
            time=now,
            slug=facts.slug or "",
            outcome=str(result.outcome),
            reason=reason,
            images=tuple(images),
            namespace=request.namespace,
            pod=facts.name or request.name,
            detail=result.detail,
        )
    )


def bounded(entry: RecentDecision) -> RecentDecision:
    """Pods are untrusted: no field of an entry grows without bound."""
    texts = {name: _cut(getattr(entry, name), limit) for name, limit in _LIMITS.items()}
    images = tuple(_cut(i, _MAX_IMAGE) for i in entry.images[:_MAX_IMAGES])
    return RecentDecision(entry.time, images=images, **texts)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def utc_now() -> datetime:
    return datetime.now(UTC)


class DecisionLog:
    """Record in this process, read across all of them. `directory=None`: this process only."""

    def __init__(
        self,
        directory: Path | None,
        keep: int = KEEP,
        clock: Callable[[], datetime] = utc_now,
        pid: Callable[[], int] = os.getpid,
    ) -> None:
        self.directory = directory
        self.keep = keep
        self.clock = clock
        self._pid = pid
        self._entries: deque[RecentDecision] = deque(maxlen=keep)
        self._lines = 0
        self._lock = threading.Lock()
        self._adopted = False

    def record_result(self, request: AdmissionRequest, result: Result) -> None:
        """Called after every admission; a failure here never fails the admission."""
        try:
            entry = from_result(request, result, self.clock())
            if entry is not None:
                self.record(entry)
        except Exception:
            log.exception("cannot record the decision for %s", request.uid)

    def record(self, entry: RecentDecision) -> None:
        with self._lock:
            if self.directory is not None and not self._adopted:
                self._adopt_orphans()
                self._adopted = True
            self._entries.append(bounded(entry))
            if self.directory is None:
                return
            if self._lines + 1 >= 2 * self.keep:
                self._rewrite()
            else:
                self._append(self._entries[-1])

    def recent(self, limit: int = 50) -> list[RecentDecision]:
        """The newest entries of every worker, newest first."""
        if self.directory is None:
            with self._lock:
                entries = list(self._entries)
        else:
            entries = list(_read_all(self.directory))
        return sorted(entries, key=lambda e: e.time, reverse=True)[:limit]

    def _path(self) -> Path:
        assert self.directory is not None
        return self.directory / f"{PREFIX}{self._pid()}{SUFFIX}"

    def _append(self, entry: RecentDecision) -> None:
        line = json.dumps(entry.to_json(), separators=(",", ":")) + "\n"
        fd = os.open(self._path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(line)
        self._lines += 1

    def _rewrite(self) -> None:
        path = self._path()
        temporary = path.with_name(f".{path.name}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for entry in self._entries:
                handle.write(json.dumps(entry.to_json(), separators=(",", ":")) + "\n")
        os.replace(temporary, path)
        self._lines = len(self._entries)

    def _adopt_orphans(self) -> None:
        assert self.directory is not None
        mine = self._pid()
        adopted: list[RecentDecision] = []
        for path in self.directory.glob(f"{PREFIX}*{SUFFIX}"):
            pid = _pid_of(path)
            if pid == mine:  # a reused pid: carry on with that file, and count it
                self._lines = len(_read_file(path))
            if pid is None or pid == mine or _alive(pid):
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
            self._rewrite()


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
