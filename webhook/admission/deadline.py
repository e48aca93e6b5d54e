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
decision is first tried in this thread without waiting
(webhook.sources.nowait), and goes to the pool only when a cache would have
to load. On the event loop, where waiting is already forbidden,
it never goes to the pool: NeedsLookup reaches the front end, which hands
the request to an admission thread.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from webhook.sources.nowait import NeedsLookup, waiting_forbidden, without_waiting

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

    def run(self, call: Callable[[], T], expires: float, budget: float) -> T:
        """`call()` if it ends before `expires` (time.monotonic()); else OutOfTime.

        It is tried in this thread first, without waiting (see the module's doc):
        every source `call` asks is a `NeverWaits` (the resolver admits no other).
        Where waiting is forbidden it only runs here, and NeedsLookup reaches the
        caller.
        """
        if waiting_forbidden():
            return call()
        try:
            return without_waiting(call)
        except NeedsLookup:
            pass
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
