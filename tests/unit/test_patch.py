"""Derived JSONPatches: correct for any pair of documents, minimal for ours."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.core.patch import escape, json_patch


@pytest.mark.parametrize(
    ("before", "after", "ops"),
    [
        ({"a": 1}, {"a": 1}, []),
        ({"a": 1}, {"a": 2}, [{"op": "replace", "path": "/a", "value": 2}]),
        ({}, {"a/b": "x"}, [{"op": "add", "path": "/a~1b", "value": "x"}]),
        ({"m": {"x~y": 1}}, {"m": {}}, [{"op": "remove", "path": "/m/x~0y"}]),
        ({"l": [1]}, {"l": [1, 2]}, [{"op": "add", "path": "/l/-", "value": 2}]),
        ({"l": [1, 2]}, {"l": [1]}, [{"op": "replace", "path": "/l", "value": [1]}]),
        ({"l": [{"n": 1}]}, {"l": [{"n": 2}]}, [{"op": "replace", "path": "/l/0/n", "value": 2}]),
        ({"a": 1}, {"a": "1"}, [{"op": "replace", "path": "/a", "value": "1"}]),
    ],
    ids=["equal", "replace", "add escaped", "remove escaped", "append", "shrink", "nested", "type"],
)
def test_json_patch_table(before: Any, after: Any, ops: list[dict[str, Any]]) -> None:
    assert json_patch(before, after) == ops


def test_escape() -> None:
    assert escape("jetstream/pin-reason") == "jetstream~1pin-reason"
    assert escape("a~/b") == "a~0~1b"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text("ab/~", max_size=3), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values, json_values)
def test_patch_turns_before_into_after(before: Any, after: Any) -> None:
    document = {"root": before}
    target = {"root": after}
    ops = json_patch(document, target)
    assert jsonpatch.apply_patch(copy.deepcopy(document), ops) == target
