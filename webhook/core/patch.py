"""RFC 6902 patches derived from a before/after pair, never written by hand.

The mutation changes a copy of the pod; this module compares the two and
emits one operation per changed field. A hand-written patch can name a wrong
path; a derived one cannot.
"""

from __future__ import annotations

from typing import Any

Operation = dict[str, Any]


def escape(token: str) -> str:
    """JSON Pointer escaping (RFC 6901): '~' -> '~0', '/' -> '~1'."""
    return token.replace("~", "~0").replace("/", "~1")


def json_patch(before: Any, after: Any, path: str = "") -> list[Operation]:
    if before is after:
        return []  # a part the mutation shared, not copied: unchanged by construction
    if type(before) is not type(after):
        return [{"op": "replace", "path": path, "value": after}]
    if isinstance(before, dict):
        return _object_patch(before, after, path)
    if isinstance(before, list):
        return _list_patch(before, after, path)
    if before != after:
        return [{"op": "replace", "path": path, "value": after}]
    return []


def _object_patch(before: dict[str, Any], after: dict[str, Any], path: str) -> list[Operation]:
    ops: list[Operation] = []
    for name, old in before.items():
        if name not in after:
            ops.append({"op": "remove", "path": f"{path}/{escape(name)}"})
        elif after[name] is not old:
            ops.extend(json_patch(old, after[name], f"{path}/{escape(name)}"))
    for name in after:
        if name not in before:
            ops.append({"op": "add", "path": f"{path}/{escape(name)}", "value": after[name]})
    return ops


def _list_patch(before: list[Any], after: list[Any], path: str) -> list[Operation]:
    """Element-wise for the common prefix, then appends; anything else replaces the list."""
    if len(after) < len(before):
        return [{"op": "replace", "path": path, "value": after}]
    ops: list[Operation] = []
    for index, (old, new) in enumerate(zip(before, after, strict=False)):
        if old is not new:
            ops.extend(json_patch(old, new, f"{path}/{index}"))
    for new in after[len(before) :]:
        ops.append({"op": "add", "path": f"{path}/-", "value": new})
    return ops
