"""Reading fields out of remote answers, so a malformed answer names the field that is wrong.

Registries answer JSON documents that we trust only as far as their shape is
checked: a missing field, a list that is not a list or a time that does not
parse becomes a `Malformed` naming the field (`dockerImages[3].uploadTime`),
which the source turns into a `SourceError`. Values are never echoed: a
document from a misbehaving server may hold anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from webhook.core.pinning import is_digest
from webhook.core.times import NotATime, parse_rfc3339

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?P<fraction>\.\d+)?(?P<zone>[Zz]|[+-]\d{2}:\d{2})"
)
# Milliseconds since the epoch beyond this are after the year 9999: not a time.
_MAX_EPOCH_MS = 253402300799999


class Malformed(ValueError):
    """An answer without the expected shape; `field` says where."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Malformed(field, f"expected an object, got {_kind(value)}")
    return value


def sequence(value: Any, field: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise Malformed(field, f"expected a list, got {_kind(value)}")
    return value


def string(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise Malformed(field, f"expected a non-empty string, got {_kind(value)}")
    return value


def strings(value: Any, field: str) -> frozenset[str]:
    """A list of strings (tags); absent or null is the empty set."""
    if value is None:
        return frozenset()
    return frozenset(string(item, f"{field}[{i}]") for i, item in enumerate(sequence(value, field)))


def field_of(document: Mapping[str, Any], name: str, where: str) -> Any:
    """A required member of an object."""
    if name not in document or document[name] is None:
        raise Malformed(join(where, name), "missing")
    return document[name]


def digest(value: Any, field: str) -> str:
    if not isinstance(value, str) or not is_digest(value):
        raise Malformed(field, "expected a digest 'sha256:<64 lowercase hex>'")
    return value


def rfc3339(value: Any, field: str) -> datetime:
    """An RFC 3339 time with a zone; nanoseconds (Google's format) are cut to microseconds."""
    if not isinstance(value, str):
        raise Malformed(field, f"expected an RFC 3339 time, got {_kind(value)}")
    match = _RFC3339.fullmatch(value.strip())
    if match is None:
        raise Malformed(field, "expected an RFC 3339 time with a zone")
    text = value.strip().upper()
    fraction = match.group("fraction")
    if fraction and len(fraction) > 7:
        text = text.replace(fraction, fraction[:7], 1)
    try:
        return parse_rfc3339(text)
    except NotATime:
        raise Malformed(field, "expected an RFC 3339 time with a zone") from None


def epoch_millis(value: Any, field: str) -> datetime:
    """Milliseconds since the epoch, sent as an integer or as a string of digits."""
    if isinstance(value, str) and re.fullmatch(r"\d{1,15}", value.strip()):
        millis = int(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        millis = value
    else:
        raise Malformed(field, f"expected milliseconds since the epoch, got {_kind(value)}")
    if millis > _MAX_EPOCH_MS:
        raise Malformed(field, "milliseconds since the epoch out of range")
    return datetime.fromtimestamp(millis / 1000, UTC)


def join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
