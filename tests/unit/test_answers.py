"""Reading fields of remote answers: every malformed value names its field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from webhook.sources.answers import (
    Malformed,
    digest,
    epoch_millis,
    field_of,
    mapping,
    rfc3339,
    sequence,
    strings,
)

HEX = "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-06-10T12:34:56.123456789Z", datetime(2024, 6, 10, 12, 34, 56, 123456, UTC)),
        ("2024-06-10T12:34:56Z", datetime(2024, 6, 10, 12, 34, 56, tzinfo=UTC)),
        ("2024-06-10t12:34:56.5z", datetime(2024, 6, 10, 12, 34, 56, 500000, UTC)),
        ("2024-06-10T14:34:56+02:00", datetime(2024, 6, 10, 12, 34, 56, tzinfo=UTC)),
    ],
)
def test_rfc3339(text: str, expected: datetime) -> None:
    parsed = rfc3339(text, "uploadTime")
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "value", ["2024-06-10", "2024-06-10T12:34:56", "yesterday", "2024-13-40T00:00:00Z", 17, None]
)
def test_rfc3339_refuses(value: Any) -> None:
    with pytest.raises(Malformed, match=r"^x\.uploadTime: expected an RFC 3339 time"):
        rfc3339(value, "x.uploadTime")


@pytest.mark.parametrize("value", ["1700000000123", 1700000000123, " 1700000000123 "])
def test_epoch_millis_string_or_integer(value: Any) -> None:
    assert epoch_millis(value, "t") == datetime(2023, 11, 14, 22, 13, 20, 123000, UTC)


@pytest.mark.parametrize("value", ["-1", "1.5", "", True, None, -5, "99999999999999999", 1e12])
def test_epoch_millis_refuses(value: Any) -> None:
    with pytest.raises(Malformed, match=r"^manifest\[x\]\.timeUploadedMs: "):
        epoch_millis(value, "manifest[x].timeUploadedMs")


def test_shapes() -> None:
    assert digest(f"sha256:{HEX}", "d") == f"sha256:{HEX}"
    with pytest.raises(Malformed, match=r"^d: expected a digest"):
        digest(f"sha256:{HEX.upper()}", "d")
    with pytest.raises(Malformed, match=r"^tags: expected a list, got a string"):
        sequence("latest", "tags")
    with pytest.raises(Malformed, match=r"^page: expected an object, got a list"):
        mapping([], "page")
    with pytest.raises(Malformed, match=r"^tags\[1\]: expected a non-empty string"):
        strings(["a", 3], "tags")
    assert strings(None, "tags") == frozenset()
    with pytest.raises(Malformed, match=r"^item.uploadTime: missing"):
        field_of({"uploadTime": None}, "uploadTime", "item")
