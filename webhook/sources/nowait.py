"""Where a lookup must not wait on a backend, and the sources that can honour that.

Most admissions need no backend at all (the caches are warm), so a decision
is first tried where waiting is forbidden: on a worker's event loop, or in
the request's thread before it is handed to the lookup pool
(webhook.admission.deadline). Inside `without_waiting`, a cache that would
have to load raises `NeedsLookup` instead, before any side effect, and the
caller decides again where waiting is allowed.

That only keeps network I/O off the event loop if every source the resolver
asks can refuse to wait. `NeverWaits` says so as a type: the caches of
`webhook.sources.cached` (and the in-memory sources) are ones; the resolver
tries a decision without waiting only when every source it holds is one, so
a source added without a cache costs a thread hand-off, never a blocked loop.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class NeedsLookup(Exception):
    """Raised by a cache, where waiting is forbidden, instead of waiting for a backend."""


class NeverWaits:
    """A source that answers from memory, or raises NeedsLookup where waiting is forbidden."""


# The hits counted inside `without_waiting`, kept until the try succeeds, so that a
# try that gave up (and is decided again) counts each lookup once.
_PENDING_HITS: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar(
    "jetstream_pin_without_waiting", default=None
)


def without_waiting(call: Callable[[], T]) -> T:
    """`call()` with waiting forbidden; NeedsLookup if a source would have to wait.

    Nested calls share the outermost one's hits, which are counted once it succeeds.
    """
    if _PENDING_HITS.get() is not None:
        return call()
    pending: list[Callable[[], None]] = []
    token = _PENDING_HITS.set(pending)
    try:
        value = call()
    finally:
        _PENDING_HITS.reset(token)
    for hit in pending:
        hit()
    return value


def waiting_forbidden() -> bool:
    """True inside `without_waiting`: a cache miss must raise NeedsLookup, not load."""
    return _PENDING_HITS.get() is not None


def count_hit(hit: Callable[[], None]) -> None:
    """Count a cache hit now, or, inside `without_waiting`, once the try has succeeded."""
    pending = _PENDING_HITS.get()
    if pending is None:
        hit()
    else:
        pending.append(hit)
