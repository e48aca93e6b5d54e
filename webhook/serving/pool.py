"""The threads that answer what the event loop cannot: reviews that need a lookup, admin pages.

A request waits for a thread at most until its deadline: `run` gives None
when no thread had started it by then, and it never starts later, so the
front end can answer with the failure policy in time. How long every thread
has been busy at once feeds the readiness probe (webhook.serving.dispatch).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from webhook.serving.routes import HttpReply


class _Job:
    __slots__ = ("abandoned", "lock", "started")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = False
        self.abandoned = False


class AppPool:
    """The threads that run the app, and how long all of them have been busy."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="admission")
        self._lock = threading.Lock()
        self.busy = 0
        self._saturated_since: float | None = None

    def saturated_for(self) -> float:
        since = self._saturated_since
        return 0.0 if since is None else time.monotonic() - since

    async def run(self, call: Callable[[], HttpReply], expires: float | None) -> HttpReply | None:
        """`call()` in a thread; None if it had not started by `expires` (then it never will)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[HttpReply | None] = loop.create_future()
        job = _Job()

        def work() -> None:
            with job.lock:
                if job.abandoned:
                    return
                job.started = True
            self._enter()
            try:
                answer = call()
            except BaseException as err:
                loop.call_soon_threadsafe(_settle, done, None, err)
                return
            finally:
                self._leave()
            loop.call_soon_threadsafe(_settle, done, answer, None)

        self._executor.submit(work)
        timer = None if expires is None else loop.call_at(expires, _expire, job, done)
        try:
            return await done
        finally:
            if timer is not None:
                timer.cancel()

    def _enter(self) -> None:
        with self._lock:
            self.busy += 1
            if self.busy >= self.threads and self._saturated_since is None:
                self._saturated_since = time.monotonic()

    def _leave(self) -> None:
        with self._lock:
            self.busy -= 1
            if self.busy < self.threads:
                self._saturated_since = None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _settle(
    done: asyncio.Future[HttpReply | None], answer: HttpReply | None, error: BaseException | None
) -> None:
    if done.done():
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(answer)


def _expire(job: _Job, done: asyncio.Future[HttpReply | None]) -> None:
    with job.lock:
        if job.started:
            return  # running: the admission's own deadline answers in time
        job.abandoned = True
    if not done.done():
        done.set_result(None)
