"""Time on the wire: RFC 3339 read and written one way, and the clock's now in UTC.

Every source and record (the static data file, the config, the registries'
answers, Workflow objects, the records on pods and Workflows) reads its
times through `parse_rfc3339` and words its own error around the reason it
gives, so what counts as a time is decided here once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache


class NotATime(ValueError):
    """Why a text is not an RFC 3339 time with a zone (the message says which)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_rfc3339(text: str) -> datetime:
    """The time in UTC; NotATime if `text` is no time, or one without a zone ("Z" or offset)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise NotATime("is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise NotATime("has no time zone; add Z or an offset")
    return moment.astimezone(UTC)


@lru_cache(maxsize=4096)
def format_rfc3339(moment: datetime) -> str:
    """Whole seconds in UTC with a "Z": annotations, Events, reports.

    Remembered: every pinned review formats its experiment's enrollment time
    twice (annotation and log line), and the few enrollment times repeat;
    `strftime` costs 1.7 us hot and more in a busy worker, a hit 0.1 us
    (docs/benchmarks.md, "Did restructuring the code cost speed?").
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
