"""Answers written by orjson, and by the standard library where orjson cannot."""

from __future__ import annotations

import json

from webhook.core import wirejson


def test_answers_are_compact_json() -> None:
    document = {"response": {"uid": "u", "allowed": True, "warnings": ["é"]}}
    written = wirejson.dumps(document)
    assert written == b'{"response":{"uid":"u","allowed":true,"warnings":["\xc3\xa9"]}}'
    assert json.loads(written) == document


def test_what_orjson_refuses_is_written_by_the_standard_library() -> None:
    document = {"counts": {1: "one"}, "huge": 2**70}
    written = wirejson.dumps(document)
    assert json.loads(written) == {"counts": {"1": "one"}, "huge": 2**70}
    assert b" " not in written  # compact as well
