"""Connections spread over the workers of one master, not taken by whichever wakes first.

The workers share each listening socket, and a worker's loop accepts every
pending connection the moment it wakes. After a burst of connects (the API
server opening its keep-alive connections, or wrk starting) one worker often
held all of them: 17-0 or 16-1 in four of six runs of `scripts/bench`'s
load on 2 workers (`ss -tnp`), at about 70 % of the rate of an even split.
The others idled while it did all the work.

So each worker has a seat in a small table the master shares with it through
the fork (an anonymous shared mapping) and publishes there how many
connections it holds. A worker that holds more than the least loaded live
worker leaves a pending connection to the others for `GRACE_SECONDS`, and
takes it itself only if nobody did (the others may be at their limit, or
busy).
"""

from __future__ import annotations

import mmap
import struct

GRACE_SECONDS = 0.005
_SLOT = struct.Struct("qq")  # live (1) or free (0), connections held
_HELD = struct.Struct("q")  # the second half of a slot, written by its worker


class Seats:
    """The master makes one before forking; a seat per live worker, freed when it exits."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._table = mmap.mmap(-1, _SLOT.size * count)  # MAP_SHARED: forked workers see it
        self._taken: set[int] = set()  # the master's own bookkeeping

    def take(self) -> int | None:
        """In the master, before forking a worker: its seat (None: all taken; it is unbalanced)."""
        for index in range(self.count):
            if index not in self._taken:
                self._taken.add(index)
                _SLOT.pack_into(self._table, index * _SLOT.size, 1, 0)
                return index
        return None

    def free(self, index: int | None) -> None:
        """In the master, when the worker in `index` has exited."""
        if index is None:
            return
        self._taken.discard(index)
        _SLOT.pack_into(self._table, index * _SLOT.size, 0, 0)

    def publish(self, index: int, connections: int) -> None:
        """In a worker: one writer per seat, so no lock (readers tolerate a stale count)."""
        _HELD.pack_into(self._table, index * _SLOT.size + _HELD.size, connections)

    def crowded(self, index: int, connections: int) -> bool:
        """True when another live worker holds fewer connections than `connections`."""
        for other in range(self.count):
            if other == index:
                continue
            live, held = _SLOT.unpack_from(self._table, other * _SLOT.size)
            if live and held < connections:
                return True
        return False


class Seat:
    """One worker's seat: what the front end calls."""

    def __init__(self, seats: Seats, index: int) -> None:
        self.seats = seats
        self.index = index

    def publish(self, connections: int) -> None:
        self.seats.publish(self.index, connections)

    def crowded(self, connections: int) -> bool:
        return self.seats.crowded(self.index, connections)
