"""TTL caches and background refresh: coalesced loads, bounded size, stale handling."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest

from harness.builders import utc
from tests.support.fakes import FakeCommits, FakeEnrollments, FakeImages, ManualClock
from webhook.config import CacheConfig
from webhook.core.datasets import Dataset
from webhook.sources import EnrolledExperiment, SourceError
from webhook.sources.cache import Refreshing, TtlCache
from webhook.sources.cached import CachedConfigHistory, CachedEnrollments, CachedImageHistory


def test_ttl_is_chosen_per_value() -> None:
    clock = ManualClock()
    cache = TtlCache[str, int | None](ttl=lambda v: 100 if v else 5, max_entries=10, clock=clock)
    loads: list[str] = []

    def load(key: str, value: int | None) -> int | None:
        loads.append(key)
        return value

    cache.get("found", lambda: load("found", 1))
    cache.get("missing", lambda: load("missing", None))
    clock.now += 10
    assert cache.get("found", lambda: load("found", 2)) == 1
    assert cache.get("missing", lambda: load("missing", 3)) == 3
    assert loads == ["found", "missing", "missing"]
    assert (cache.stats.hits, cache.stats.misses, cache.stats.loads) == (1, 3, 3)


def test_bounded_least_recently_used() -> None:
    cache = TtlCache[int, int](ttl=lambda _: 100, max_entries=3)
    for key in range(3):
        cache.get(key, lambda k=key: k)  # type: ignore[misc]
    cache.get(0, lambda: -1)  # touch 0: 1 is now the oldest
    cache.get(3, lambda: 3)
    assert len(cache) == 3
    assert cache.peek(1) is None
    assert cache.peek(0) == 0


def test_concurrent_misses_make_one_load() -> None:
    cache = TtlCache[str, str](ttl=lambda _: 100, max_entries=10)
    calls = 0
    gate = threading.Event()

    def slow_load() -> str:
        nonlocal calls
        calls += 1
        gate.wait(5)
        return "value"

    with ThreadPoolExecutor(max_workers=32) as pool:
        futures = [pool.submit(cache.get, "key", slow_load) for _ in range(32)]
        time.sleep(0.2)
        gate.set()
        assert {f.result() for f in futures} == {"value"}
    assert calls == 1


def test_failures_reach_every_waiter_and_are_not_cached() -> None:
    cache = TtlCache[str, str](ttl=lambda _: 100, max_entries=10)
    gate = threading.Event()

    def failing() -> str:
        gate.wait(5)
        raise SourceError("s", "down")

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(cache.get, "k", failing) for _ in range(8)]
        time.sleep(0.2)
        gate.set()
        for future in futures:
            with pytest.raises(SourceError):
                future.result()
    assert cache.get("k", lambda: "recovered") == "recovered"


def test_refreshing_serves_without_waiting_until_too_stale() -> None:
    clock = ManualClock()
    loads = []

    def load() -> int:
        loads.append(clock.now)
        return len(loads)

    value = Refreshing(load, refresh_every=60, max_stale=600, name="v", clock=clock)
    assert value.current() is None
    assert value.get() == 1
    clock.now += 300  # refresh due but the background thread is not running here
    assert value.get() == 1
    clock.now += 301  # beyond max_stale: the request loads itself
    assert value.get() == 2
    assert value.current() == 2


def test_background_refresh_replaces_the_value() -> None:
    counter = iter(range(1, 1000))
    value = Refreshing(lambda: next(counter), refresh_every=0.1, max_stale=60, name="v")
    value.start()
    try:
        deadline = time.monotonic() + 10
        while (value.current() or 0) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (value.current() or 0) >= 3
    finally:
        value.stop()


def test_background_refresh_failure_keeps_the_old_value() -> None:
    answers: list[int | Exception] = [1, SourceError("s", "down")]

    def load() -> int:
        answer = answers[0] if len(answers) == 1 else answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    value = Refreshing(load, refresh_every=60, max_stale=600, name="v")
    assert value.get() == 1
    answers[:] = [SourceError("s", "down")]
    with pytest.raises(SourceError):
        value.refresh()
    assert value.get() == 1


CONFIG = CacheConfig()


def test_cached_image_history_lists_once() -> None:
    images = FakeImages()
    cached = CachedImageHistory(images, CONFIG)
    for _ in range(10):
        cached.images()
    assert images.calls == 1
    assert cached.name == images.name


MOZANALYSIS = Dataset("moz-fx-data-experiments", "mozanalysis")
STAGING = Dataset("moz-fx-data-experiments", "mozanalysis_staging")


class WallClock:
    """A wall clock a test moves by hand."""

    def __init__(self, start: str = "2024-06-01T00:00:00Z") -> None:
        self.now = utc(start)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_cached_enrollments_per_dataset_slug_and_not_enrolled() -> None:
    clock = FakeEnrollments()
    cached = CachedEnrollments(clock, CONFIG)
    for _ in range(5):
        cached.enrolled_at("my-experiment", MOZANALYSIS)
        cached.enrolled_at("never-enrolled", MOZANALYSIS)
        cached.enrolled_at("my-experiment", STAGING)
    assert clock.calls == 3
    assert {(slug, dataset) for slug, dataset, _ in clock.asked} == {
        ("my-experiment", MOZANALYSIS),
        ("never-enrolled", MOZANALYSIS),
        ("my-experiment", STAGING),
    }


class Lister:
    name = "lister"

    def __init__(self, wall: WallClock | None = None) -> None:
        self.calls: list[Dataset] = []
        self.wall = wall
        self.rows = [
            EnrolledExperiment(
                "enrollments_my_experiment", None, utc("2023-02-01T00:00:00Z"), "table-name"
            )
        ]

    def list_enrolled(self, dataset: Dataset) -> list[EnrolledExperiment]:
        self.calls.append(dataset)
        if self.wall is not None:
            self.wall.advance(1)  # a listing takes time
        return list(self.rows)


def test_prefetched_listing_answers_without_per_slug_calls() -> None:
    clock = FakeEnrollments()
    lister = Lister()
    cached = CachedEnrollments(clock, CONFIG, lister, [MOZANALYSIS, STAGING])
    cached.listings[MOZANALYSIS].refresh()
    assert cached.enrolled_at("my-experiment", MOZANALYSIS) == utc("2023-02-01T00:00:00Z")
    assert clock.calls == 0
    assert cached.enrolled_at("late-experiment", MOZANALYSIS) == utc("2024-03-01T00:00:00Z")
    assert clock.calls == 1  # a table newer than the listing: asked for directly
    assert lister.calls == [MOZANALYSIS]
    assert cached.cold_listings == [f"{clock.name} listing of {STAGING}"]


def test_a_fresh_answer_needs_a_listing_begun_after_the_moment() -> None:
    """A rerun moves the table's label just before it submits: older listings are stale."""
    wall = WallClock()
    clock = FakeEnrollments()
    lister = Lister(wall)
    cached = CachedEnrollments(clock, CONFIG, lister, [MOZANALYSIS], wall=wall)
    cached.listings[MOZANALYSIS].refresh()  # begun at 00:00:00
    submitted = wall.now + timedelta(seconds=30)
    wall.advance(60)
    lister.rows = [
        EnrolledExperiment(
            "enrollments_my_experiment", None, utc("2024-06-01T00:00:20Z"), "table-name"
        )
    ]
    assert cached.enrolled_at("my-experiment", MOZANALYSIS, submitted) == utc(
        "2024-06-01T00:00:20Z"
    )
    assert len(lister.calls) == 2
    # every other experiment of that Workflow: the same listing, no call of its own
    assert cached.enrolled_at("late-experiment", MOZANALYSIS, submitted) is None
    assert len(lister.calls) == 2
    assert clock.calls == 0


def test_an_unreadable_table_is_read_on_its_own_never_not_enrolled() -> None:
    """A listed table with a bad label costs that experiment only: it is not "not enrolled"."""
    wall = WallClock()
    clock = FakeEnrollments()
    clock.error = SourceError("bigquery", "table enrollments_my_experiment has label ...")
    lister = Lister(wall)
    lister.rows = [
        EnrolledExperiment("enrollments_my_experiment", None, None, "table-name", "bad label"),
        EnrolledExperiment(
            "enrollments_late_experiment", None, utc("2024-03-01T00:00:00Z"), "table-name"
        ),
    ]
    cached = CachedEnrollments(clock, CONFIG, lister, [MOZANALYSIS], wall=wall)
    cached.listings[MOZANALYSIS].refresh()
    wall.advance(5)
    for fresh_since in (None, wall.now - timedelta(seconds=10)):
        assert cached.enrolled_at("late-experiment", MOZANALYSIS, fresh_since) == utc(
            "2024-03-01T00:00:00Z"
        )
        with pytest.raises(SourceError, match="has label"):
            cached.enrolled_at("my-experiment", MOZANALYSIS, fresh_since)
    assert clock.calls == 2  # the unreadable one only, each time
    assert len(lister.calls) == 1


def test_a_fresh_answer_without_a_listing_reads_the_table_again() -> None:
    wall = WallClock()
    clock = FakeEnrollments()
    cached = CachedEnrollments(clock, CONFIG, wall=wall)
    cached.enrolled_at("my-experiment", MOZANALYSIS)
    wall.advance(10)
    created = wall.now
    cached.enrolled_at("my-experiment", MOZANALYSIS, created - timedelta(seconds=20))
    assert clock.calls == 1  # read after that moment already
    cached.enrolled_at("my-experiment", MOZANALYSIS, created)
    cached.enrolled_at("my-experiment", MOZANALYSIS, created)
    assert clock.calls == 2  # read again once, then that read serves


def test_a_moment_ahead_of_this_clock_is_capped_at_the_call() -> None:
    """A Workflow created 'in the future' (clock skew) must not make every read stale."""
    wall = WallClock()
    clock = FakeEnrollments()
    cached = CachedEnrollments(clock, CONFIG, wall=wall)
    ahead = wall.now + timedelta(minutes=5)
    for _ in range(3):
        cached.enrolled_at("my-experiment", MOZANALYSIS, ahead)
    assert clock.calls == 1


def test_a_joined_load_that_began_too_early_is_loaded_again() -> None:
    wall = WallClock()
    cache = TtlCache[str, datetime](lambda _: 60.0, 10)
    started = threading.Event()
    release = threading.Event()
    loads: list[datetime] = []

    def slow() -> datetime:
        began = wall.now  # the value is the moment its load began
        loads.append(began)
        if len(loads) == 1:
            started.set()
            release.wait(5)
        return began

    early = threading.Thread(target=lambda: cache.get("k", slow))
    early.start()
    assert started.wait(5)
    wall.advance(5)
    wanted = wall.now
    late: list[datetime] = []
    joiner = threading.Thread(
        target=lambda: late.append(cache.get("k", slow, lambda v: v >= wanted))
    )
    joiner.start()
    release.set()
    early.join(5)
    joiner.join(5)
    assert late == [wanted]
    assert len(loads) == 2


def test_cached_config_history_by_time_and_tip() -> None:
    commits = FakeCommits()
    cached = CachedConfigHistory(commits, CONFIG)
    moment: datetime = utc("2023-05-01T00:00:00Z")
    for _ in range(3):
        cached.sha_at(moment)
        cached.sha_at(None)
    assert commits.calls == 2
