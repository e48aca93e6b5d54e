"""The markers by folder hold: every folder of tests has its marker, declared and applied.

`pytest -m "not cluster and not node"` is only as good as this: a new folder
without a marker would be selected by every `-m` expression that excludes.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.conftest import FOLDER_MARKERS, HERE


def test_every_folder_of_tests_has_a_marker() -> None:
    folders = {path.relative_to(HERE).parts[0] for path in HERE.rglob("test_*.py")}
    assert folders == set(FOLDER_MARKERS)


def test_every_marker_is_declared_in_pyproject() -> None:
    pyproject = tomllib.loads((HERE.parent / "pyproject.toml").read_text())
    declared = [
        line.split(":")[0] for line in pyproject["tool"]["pytest"]["ini_options"]["markers"]
    ]
    assert sorted(declared) == sorted(FOLDER_MARKERS)


def test_this_test_carries_its_folders_marker_only(request: pytest.FixtureRequest) -> None:
    assert Path(request.node.path).parent.name == "unit"
    assert [m.name for m in request.node.iter_markers() if m.name in FOLDER_MARKERS] == ["unit"]
