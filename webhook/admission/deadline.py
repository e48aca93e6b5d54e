"""One wall-clock budget per admission, and lookups that are abandoned when it runs out.

The API server gives up on a webhook after its `timeoutSeconds` and answers
"failed calling webhook", which Argo does not retry. Per-request timeouts
cannot prevent that: they add up over several lookups, and a backend that
drips a few bytes per read never trips a read timeout. So an admission's
lookups run in a pool thread while the admission waits at most for what is
left of its budget; when it runs out the admission stops waiting and
answers with the failure policy, naming the lookup it was waiting for. The
abandoned lookup runs on, bounded by its source's own timeout, and a
coalesced cache load it leads may still serve the next request.

Most admissions need no backend at all (the caches are warm), and handing
them to another thread would cost them a thread switch for nothing. So a
decision is first tried inline with waiting forbidden: a cache that would
have to load raises `NeedsLookup` instead, and only then does the decision
go to the pool. Cache hits of an inline try that gave up are not counted,
so the metrics count each lookup once.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

T = TypeVar("T")


class Progress:
    """Which source the lookups of one admission are waiting on (named when time runs out)."""

    def __init__(self) -> None:
        self.source: str | None = None  # None: not started (every lookup thread busy)


_CURRENT: contextvars.ContextVar[Progress | None] = contextvars.ContextVar(
    "jetstream_pin_lookup", default=None
)


def entering(source: str) -> None:
    """Record that the running admission now waits on `source` (no-op outside one)."""
    progress = _CURRENT.get()
    if progress is not None:
        progress.source = source


class NeedsLookup(Exception):
    """Raised by a cache, in an inline try, where it would have to wait for a backend."""


_INLINE_HITS: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar(
    "jetstream_pin_inline", default=None
)


def must_not_wait() -> bool:
    """True inside an inline try: a cache miss must raise NeedsLookup, not load."""
    return _INLINE_HITS.get() is not None


def count_hit(hit: Callable[[], None]) -> None:
    """Count a cache hit now, or, in an inline try, once the try has succeeded."""
    pending = _INLINE_HITS.get()
    if pending is None:
        hit()
    else:
        pending.append(hit)


_LOOP_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "jetstream_pin_loop_only", default=False
)


def loop_only(call: Callable[[], T]) -> T:
    """`call()` where no lookup may go to the pool: NeedsLookup if one would have to."""
    token = _LOOP_ONLY.set(True)
    try:
        return call()
    finally:
        _LOOP_ONLY.reset(token)


def on_loop() -> bool:
    """True inside `loop_only`."""
    return _LOOP_ONLY.get()


def inline(call: Callable[[], T]) -> T:
    """`call()` with waiting forbidden; NeedsLookup if it would have to wait."""
    pending: list[Callable[[], None]] = []
    token = _INLINE_HITS.set(pending)
    try:
        value = call()
    finally:
        _INLINE_HITS.reset(token)
    for hit in pending:
        hit()
    return value


class OutOfTime(Exception):
    """The admission's budget ran out while `source` had not answered (None: not started)."""

    def __init__(self, source: str | None, budget: float) -> None:
        super().__init__(f"{source}: no answer within the admission deadline of {budget:g}s")
        self.source = source
        self.budget = budget


class LookupPool:
    """Threads that run admissions' lookups so that an admission can stop waiting for them.

    Bounded: abandoned lookups still hold a thread until their source's own
    timeout ends them, so a hanging backend fills at most `threads` threads;
    later lookups then wait in the queue and run out of time like any other.
    """

    def __init__(self, threads: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lookup")

    def run(
        self, call: Callable[[], T], expires: float, budget: float, inline_first: bool = False
    ) -> T:
        """`call()` if it ends before `expires` (time.monotonic()); else OutOfTime.

        `inline_first`: try it in this thread first (see the module's doc); only for
        calls whose every wait is behind a cache (the Wiring puts every source behind one).
        """
        if inline_first or _LOOP_ONLY.get():
            try:
                return inline(call)
            except NeedsLookup:
                if _LOOP_ONLY.get():
                    raise
        progress = Progress()

        def tracked() -> T:
            _CURRENT.set(progress)
            return call()

        future: Future[T] = self._pool.submit(contextvars.copy_context().run, tracked)
        try:
            return future.result(timeout=max(expires - time.monotonic(), 0.0))
        except FutureTimeout:
            future.cancel()  # never started: it will not run at all
            raise OutOfTime(progress.source, budget) from None

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
