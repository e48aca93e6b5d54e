"""The admission deadline: lookups abandoned when the budget runs out, naming the source."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

from webhook.admission.deadline import LookupPool, OutOfTime, entering
from webhook.sources.cache import TtlCache
from webhook.sources.nowait import NeedsLookup, waiting_forbidden

T = TypeVar("T")


def test_an_answer_in_time_is_returned() -> None:
    pool = LookupPool(2)
    assert pool.run(lambda: 42, time.monotonic() + 5, 5) == 42


def behind_a_cache(call: Callable[[], T]) -> Callable[[], T]:
    """`call` as a decision sees it: a cold cache that refuses to wait, then loads in the pool."""

    def lookup() -> T:
        if waiting_forbidden():
            raise NeedsLookup("cold cache")
        return call()

    return lookup


def test_a_slow_lookup_is_abandoned_and_named() -> None:
    pool = LookupPool(2)
    release = threading.Event()

    def slow() -> int:
        entering("slow source")
        release.wait(10)
        return 1

    started = time.monotonic()
    with pytest.raises(OutOfTime, match="slow source: no answer within the admission deadline"):
        pool.run(behind_a_cache(slow), time.monotonic() + 0.2, 0.2)
    assert time.monotonic() - started < 1.0
    release.set()


def test_errors_of_the_lookup_reach_the_caller() -> None:
    def broken() -> int:
        raise ValueError("bad answer")

    with pytest.raises(ValueError, match="bad answer"):
        LookupPool(1).run(broken, time.monotonic() + 5, 5)


def test_a_lookup_queued_behind_busy_threads_never_runs_once_abandoned() -> None:
    pool = LookupPool(1)
    release = threading.Event()
    ran: list[str] = []
    blocker = threading.Thread(
        target=lambda: pool.run(behind_a_cache(lambda: release.wait(10)), time.monotonic() + 10, 10)
    )
    blocker.start()
    time.sleep(0.05)
    with pytest.raises(OutOfTime):
        pool.run(behind_a_cache(lambda: ran.append("queued")), time.monotonic() + 0.1, 0.1)
    release.set()
    blocker.join(5)
    time.sleep(0.05)
    assert ran == []


def test_entering_outside_an_admission_is_harmless() -> None:
    entering("anything")


def test_warm_caches_decide_inline_and_count_each_hit_once() -> None:
    warm = TtlCache[str, int](ttl=lambda _: 60, max_entries=10, name="")
    cold = TtlCache[str, int](ttl=lambda _: 60, max_entries=10, name="")
    warm.put("k", 1)
    threads: list[str] = []

    def decide() -> int:
        threads.append(threading.current_thread().name)
        return warm.get("k", lambda: 0) + cold.get("k", lambda: 2)

    pool = LookupPool(2)
    assert pool.run(decide, time.monotonic() + 5, 5) == 3
    # Tried inline (the cold cache refused to load there), then decided in the pool.
    assert threads[0] == threading.current_thread().name
    assert threads[1].startswith("lookup")
    assert (warm.stats.hits, cold.stats.misses) == (1, 1)
    threads.clear()
    assert pool.run(decide, time.monotonic() + 5, 5) == 3
    assert threads == [threading.current_thread().name]  # both warm now: inline only
    assert (warm.stats.hits, cold.stats.hits) == (2, 1)
