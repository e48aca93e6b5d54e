"""JSON on the admission path: reviews parsed by orjson where it accepts them.

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
    """The standard library's bytes, as before: clients and tests read the answer as text.

    orjson would save about 3 µs per answer (`bench.stages`: 4.8 µs for the
    pinned response), not worth changing what every answer looks like.
    """
    return json.dumps(document).encode()
