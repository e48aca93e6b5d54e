"""Caches for the sources: TTL per entry, single-flight loads, bounded size, background refresh.

Admission is on the critical path of every pod, and Argo starts pods in
bursts: hundreds of pods for the same few experiments within seconds. A
cold key is loaded once however many requests want it at the same moment
(single flight); a value that changes rarely (the image history) is
refreshed by a background thread before it goes stale, so no request waits
on it once warm.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from webhook import metrics
from webhook.sources.nowait import NeedsLookup, count_hit, waiting_forbidden

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Clock = Callable[[], float]


@dataclass
class CacheStats:
    """Counts kept per cache object (for tests) and exported as metrics under `name`."""

    name: str = ""
    hits: int = 0
    misses: int = 0
    loads: int = 0
    failures: int = 0

    def hit(self) -> None:
        self.hits += 1
        if self.name:
            metrics.child(metrics.CACHE_REQUESTS, self.name, "hit").inc()

    def miss(self) -> None:
        self.misses += 1
        if self.name:
            metrics.child(metrics.CACHE_REQUESTS, self.name, "miss").inc()


class _Flight(Generic[V]):
    """One load in progress; followers wait for the leader's value or error."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: V | None = None
        self.error: BaseException | None = None


class TtlCache(Generic[K, V]):
    """Per-key TTL (chosen per value), LRU-bounded, loads coalesced per key."""

    def __init__(
        self,
        ttl: Callable[[V], float],
        max_entries: int,
        clock: Clock = time.monotonic,
        name: str = "",
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._flights: dict[K, _Flight[V]] = {}
        self._lock = threading.Lock()
        self.stats = CacheStats(name)

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, key: K) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > self._clock():
                return entry[1]
            return None

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._store(key, value)

    def get(self, key: K, load: Callable[[], V], usable: Callable[[V], bool] | None = None) -> V:
        """The value for `key`, loading it (once for all concurrent callers) when missing.

        `usable`: a cached value (or the result of a load already running when
        this call joined it) that fails it counts as missing, so a caller that
        needs a value loaded after some moment gets one.
        """
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if (
                    entry is not None
                    and entry[0] > self._clock()
                    and (usable is None or usable(entry[1]))
                ):
                    self._entries.move_to_end(key)
                    count_hit(self.stats.hit)
                    return entry[1]
                if waiting_forbidden():
                    raise NeedsLookup(self.stats.name)
                self.stats.miss()
                flight = self._flights.get(key)
                leader = flight is None
                if flight is None:
                    flight = self._flights[key] = _Flight()
            if leader:
                return self._lead(key, load, flight)
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            value: V = flight.value  # type: ignore[assignment]
            if usable is None or usable(value):
                return value
            # The load joined began too early for this caller: load again.

    def _lead(self, key: K, load: Callable[[], V], flight: _Flight[V]) -> V:
        try:
            value = load()
        except BaseException as err:
            flight.error = err
            with self._lock:
                self.stats.failures += 1
                del self._flights[key]
            flight.done.set()
            raise
        flight.value = value
        with self._lock:
            self.stats.loads += 1
            self._store(key, value)
            del self._flights[key]
        flight.done.set()
        return value

    def _store(self, key: K, value: V) -> None:
        self._entries[key] = (self._clock() + self._ttl(value), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


class Refreshing(Generic[V]):
    """One value kept fresh: loaded on first use, then refreshed in the background.

    Requests get the current value without waiting once it exists. Only when
    it is older than `max_stale` (the background refresh has been failing)
    does a request load it itself, so an outage surfaces as an error instead
    of silently pinning new experiments to an old history.
    """

    def __init__(
        self,
        load: Callable[[], V],
        refresh_every: float,
        max_stale: float,
        name: str,
        clock: Clock = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._load = load
        self.refresh_every = refresh_every
        self.max_stale = max(max_stale, refresh_every)
        self.name = name
        self._clock = clock
        self._wall = wall
        self._value: V | None = None
        self._loaded_at = float("-inf")
        self._began = datetime.min.replace(tzinfo=UTC)
        self._flight = TtlCache[str, tuple[V, datetime]](
            ttl=lambda _: 0.0, max_entries=1, clock=clock
        )
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.stats = CacheStats(name)
        self.last_error: Exception | None = None  # of the latest load, None once one succeeds

    @property
    def age(self) -> float:
        return self._clock() - self._loaded_at

    @property
    def loaded_since(self) -> datetime | None:
        """When the load that gave the current value began (wall clock); None: no value."""
        return self._began if self._value is not None else None

    @property
    def warm(self) -> bool:
        return self._value is not None

    def current(self) -> V | None:
        """The value if it is fresh enough to use, without ever loading."""
        value = self._value
        return value if value is not None and self.age <= self.max_stale else None

    def get(self) -> V:
        value = self._value
        if value is not None and self.age <= self.max_stale:
            count_hit(self.stats.hit)
            return value
        if waiting_forbidden():
            raise NeedsLookup(self.name)
        self.stats.miss()
        return self.refresh()

    def since(self, moment: datetime) -> V:
        """A value whose load began at or after `moment` (wall clock), loading one if needed.

        A load already running is joined only if it began late enough. A
        `moment` ahead of this machine's clock (skew) is capped at the time of
        this call: a load begun after the call is as fresh as any can be.
        """
        wanted = min(moment, self._wall())
        value = self._value
        if value is not None and self._began >= wanted:
            count_hit(self.stats.hit)
            return value
        if waiting_forbidden():
            raise NeedsLookup(self.name)
        self.stats.miss()
        return self.refresh(wanted)

    def refresh(self, began_by: datetime | None = None) -> V:
        """Load now (coalesced with a load already running, if it began at or after `began_by`)."""
        try:
            value, began = self._flight.get(
                "value",
                self._timed_load,
                None if began_by is None else (lambda loaded: loaded[1] >= began_by),
            )
        except Exception as err:
            self.stats.failures += 1
            self.last_error = err
            raise
        with self._lock:
            self.last_error = None
            if self._value is None or began >= self._began:
                self._value = value
                self._began = began
                self._loaded_at = self._clock()
            self.stats.loads += 1
        return value

    def _timed_load(self) -> tuple[V, datetime]:
        began = self._wall()
        return self._load(), began

    def start(self) -> None:
        """Refresh every `refresh_every` seconds in a daemon thread (after a fork, not before)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"refresh {self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.age >= self.refresh_every or not self.warm:
                try:
                    self.refresh()
                except Exception as err:
                    log.warning(
                        "background refresh of %s failed: %s",
                        self.name,
                        err,
                        extra={"fields": {"source": self.name, "error": str(err)}},
                    )
            wait = self.refresh_every - self.age if self.warm else min(self.refresh_every, 5.0)
            self._stop.wait(max(wait, 0.5))
