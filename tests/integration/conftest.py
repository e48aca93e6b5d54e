"""Integration tests cross a real wire: the webhook runs under gunicorn with TLS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry import Registry, running_registry
from tests.servers import Server, running_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(Path(tmp_path_factory.mktemp("webhook"))) as running:
        yield running


@pytest.fixture(scope="session")
def docker_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The real CNCF distribution registry on 127.0.0.1 (fails, never skips, when missing)."""
    with running_registry(Path(tmp_path_factory.mktemp("registry"))) as running:
        yield running
