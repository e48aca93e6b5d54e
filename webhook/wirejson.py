"""JSON on the admission path: orjson where it accepts the input, the standard library otherwise.

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
    """Compact UTF-8 JSON (what orjson writes); TypeError for what JSON cannot hold."""
    return orjson.dumps(document)
