"""JSON on the admission path: reviews parsed, and answers written, by orjson where it can.

Parsing a 13-25 KB review with `json.loads` held the GIL for a fifth of a
loaded worker's samples (docs/benchmarks.md, "Where the time goes"); orjson
parses it several times faster. Whatever orjson refuses (invalid JSON, but
also lone surrogates or UTF-16 that the standard library reads) is parsed
again by the standard library, so what is accepted and every error message
stay exactly as before.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(body: bytes | str) -> Any:
    """The document; ValueError or RecursionError as `json.loads` raises them (NaN refused)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body, parse_constant=_reject_constant)


def dumps(document: Any) -> bytes:
    """Compact JSON by orjson; what it cannot write, by the standard library.

    In the loaded server, `json.dumps` of a pinned answer (its base64 patch,
    warnings and audit annotations) took about 6 % of the worker's samples,
    some 30 us per answer (docs/benchmarks.md, "Where the time goes"). The
    fallback covers what orjson refuses: keys that are not strings and
    integers beyond 64 bits.
    """
    try:
        return orjson.dumps(document)
    except TypeError:
        return json.dumps(document, separators=(",", ":")).encode()


def error_document(code: int, message: str) -> dict[str, Any]:
    """The body of every HTTP error the webhook answers itself: what is wrong, and the code."""
    return {"error": message, "code": code}
