"""The layering of webhook/ holds: import-linter checks the contracts in pyproject.toml.

Layers, top to bottom: cli > wiring > serving | insight > admission > kube >
sources > logs > certs | config | metrics > core. The core imports no I/O
library, and no package's modules import each other in a cycle. A broken
contract fails the test with import-linter's report, which names the import
and its line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

from harness.builders import ROOT

# What the pure core may import from outside the project: the standard library's
# pure parts, and orjson (the review parse). Anything else (a new I/O library the
# forbidden contract does not name yet) fails here.
CORE_MAY_IMPORT = frozenset(
    {
        "__future__", "abc", "base64", "bisect", "collections", "copy", "dataclasses",
        "datetime", "enum", "functools", "hashlib", "heapq", "itertools", "json", "math",
        "operator", "orjson", "re", "shlex", "string", "textwrap", "types", "typing",
    }
)  # fmt: skip


def test_the_import_contracts_are_kept() -> None:
    linter = Path(sys.executable).parent / "lint-imports"
    assert linter.exists(), "install the test extra: pip install -e '.[test]' (import-linter)"
    run = subprocess.run(
        [str(linter), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout, run.stdout


def test_the_core_imports_only_pure_standard_modules_and_orjson() -> None:
    graph = grimp.build_graph("webhook", include_external_packages=True)
    outside = {
        (module, imported)
        for module in graph.find_descendants("webhook.core")
        for imported in graph.find_modules_directly_imported_by(module)
        if not imported.startswith("webhook.") and imported.split(".")[0] not in CORE_MAY_IMPORT
    }
    assert not outside, f"webhook.core imports outside its allow-list: {sorted(outside)}"


def test_the_core_imports_nothing_of_the_project_outside_the_core() -> None:
    graph = grimp.build_graph("webhook")
    upward = {
        (module, imported)
        for module in graph.find_descendants("webhook.core")
        for imported in graph.find_modules_directly_imported_by(module)
        if not imported.startswith("webhook.core")
    }
    assert not upward, f"webhook.core imports the rest of the project: {sorted(upward)}"
