"""Markers by folder: every test gets its folder's marker here, by path.

The folder says what a test needs (see the markers declared in pyproject.toml),
so `pytest -m unit` or `pytest -m "not cluster and not node"` selects by what
runs, and no test file has to remember to mark itself. The fixtures that start
a control plane live in tests/cluster/conftest.py and tests/node/conftest.py,
so only tests in those folders can request them: deselect the two markers and
no kube-apiserver or etcd starts (tests/unit/test_markers.py checks the folders).
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent
FOLDER_MARKERS = {
    "unit": pytest.mark.unit,
    "chart": pytest.mark.chart,
    "integration": pytest.mark.integration,
    "cluster": pytest.mark.cluster,
    "node": pytest.mark.node,
    "reliability": pytest.mark.reliability,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.relative_to(HERE).parts[0]
        if folder not in FOLDER_MARKERS:
            raise pytest.UsageError(
                f"{item.nodeid}: tests live in one of {sorted(FOLDER_MARKERS)} (tests/conftest.py)"
            )
        item.add_marker(FOLDER_MARKERS[folder])
