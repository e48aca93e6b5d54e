"""A small TTL cache whose concurrent misses for one key share one call.

Answers, including "not there", are kept `ttl` seconds; failures are not kept,
but every caller waiting on the failed call gets the same error instead of
queueing up to repeat it one timeout after the other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class _Flight(Generic[V]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: V | None = None
        self.error: BaseException | None = None


class TtlCache(Generic[V]):
    def __init__(
        self,
        ttl: float,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._flights: dict[Hashable, _Flight[V]] = {}

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > self.clock():
                return entry[1]
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value  # type: ignore[return-value]
        try:
            flight.value = load()
        except BaseException as err:
            flight.error = err
            raise
        else:
            self._store(key, flight.value)
            return flight.value
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def _store(self, key: Hashable, value: V) -> None:
        with self._lock:
            now = self.clock()
            if len(self._entries) >= self.max_entries:
                for old in [k for k, (expires, _) in self._entries.items() if expires <= now]:
                    del self._entries[old]
            while len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]  # the oldest insertion
            self._entries.pop(key, None)
            self._entries[key] = (now + self.ttl, value)
