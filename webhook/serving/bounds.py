"""What one worker lets its clients hold: connections per port, and bytes of request bodies.

Both are bounds per worker process, enforced on its event loop (no locks):

- `Room`: the connections open on one listening port. Each port has a room
  of its own, so clients of the status page can never use up the room of
  admission. At the bound, a client waiting to connect gets the place of
  the connection that has been idle the longest (between requests, or not
  started yet): idle keep-alive connections cannot keep new ones out.
- `BodyBudget`: the bytes of request bodies held at once, from the moment
  a body starts being read until its answer is ready. A body that does not
  fit waits unread (its bytes stay in the kernel) until enough is given
  back. Bodies up to `SMALL_BODY_BYTES` (an ordinary review is 5-15 KiB) may
  use the whole budget; larger ones only `LARGE_SHARE` of it, so a few
  clients sending huge bodies cannot hold up ordinary reviews.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from webhook.config import LARGE_SHARE

SMALL_BODY_BYTES = 64 * 1024


class Room:
    """The open connections of one port, and which of them idle (longest idle first)."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.open: set[asyncio.Task[None]] = set()
        self.idle: dict[asyncio.Task[None], None] = {}  # insertion order: idle the longest first
        self._changed = asyncio.Event()

    @property
    def full(self) -> bool:
        return len(self.open) >= self.bound

    def entered(self, task: asyncio.Task[None]) -> None:
        self.open.add(task)
        self.idle[task] = None  # not in a request yet

    def left(self, task: asyncio.Task[None]) -> None:
        self.open.discard(task)
        self.idle.pop(task, None)
        self._changed.set()

    def resting(self, task: asyncio.Task[None]) -> None:
        """`task` finished a request and waits for the next: the newest idle one."""
        self.idle.pop(task, None)
        self.idle[task] = None
        self._changed.set()

    def working(self, task: asyncio.Task[None]) -> None:
        self.idle.pop(task, None)

    async def make_room(
        self,
        client_waiting: Callable[[], Awaitable[object]],
        closed_for_room: Callable[[], None],
    ) -> None:
        """Return once a connection fits, closing the longest-idle one when a client waits.

        `client_waiting()` resolves when a client is waiting to be accepted, so
        no idle connection is closed for nobody.
        """
        while self.full:
            self._changed.clear()
            if self.idle:
                await client_waiting()
                if not self.full:
                    return
                victim = next(iter(self.idle), None)
                if victim is not None:
                    self.idle.pop(victim)
                    victim.cancel()
                    closed_for_room()
            await self._changed.wait()


class BodyBudget:
    """Bytes of request bodies one worker holds at once; `take` waits for room, unread."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.large_limit = int(limit * LARGE_SHARE)
        self.held = 0
        self.large_held = 0
        self._waiters = 0
        self._given = asyncio.Event()

    def fits(self, size: int) -> bool:
        if self.held + size > self.limit:
            return False
        return size <= SMALL_BODY_BYTES or self.large_held + size <= self.large_limit

    async def take(self, size: int, timeout: float) -> bool:
        """Hold `size` bytes; False if they did not fit within `timeout` seconds."""
        if not self.fits(size):
            self._waiters += 1
            try:
                async with asyncio.timeout(max(timeout, 0.0)):
                    while not self.fits(size):
                        self._given.clear()
                        await self._given.wait()
            except TimeoutError:
                return False
            finally:
                self._waiters -= 1
        self.held += size
        if size > SMALL_BODY_BYTES:
            self.large_held += size
        return True

    def give(self, size: int) -> None:
        self.held -= size
        if size > SMALL_BODY_BYTES:
            self.large_held -= size
        if self._waiters:
            self._given.set()
