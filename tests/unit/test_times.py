"""RFC 3339 read one way for every source and record, written one way for every annotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from webhook.core.times import NotATime, format_rfc3339, parse_rfc3339, utc_now


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-01-01T00:00:00Z", datetime(2023, 1, 1, tzinfo=UTC)),
        ("2023-01-01T02:00:00+02:00", datetime(2023, 1, 1, tzinfo=UTC)),
        ("2023-01-01T00:00:00.250000Z", datetime(2023, 1, 1, 0, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_a_time_with_a_zone_is_read_in_utc(text: str, expected: datetime) -> None:
    moment = parse_rfc3339(text)
    assert moment == expected
    assert moment.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("yesterday", "is not an RFC 3339 time"),
        ("", "is not an RFC 3339 time"),
        ("2023-01-01T00:00:00", "has no time zone; add Z or an offset"),
    ],
)
def test_anything_else_says_why(text: str, why: str) -> None:
    with pytest.raises(NotATime, match=why):
        parse_rfc3339(text)


def test_written_in_whole_seconds_in_utc() -> None:
    moment = datetime(2023, 1, 1, 2, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert format_rfc3339(moment) == "2023-01-01T00:00:00Z"
    assert parse_rfc3339(format_rfc3339(moment)) == moment.replace(microsecond=0)


def test_now_is_in_utc() -> None:
    assert utc_now().tzinfo is UTC
