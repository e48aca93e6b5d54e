"""Integration tests cross a real wire: the webhook runs under gunicorn with TLS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.dockerregistry import Registry, running_registry
from harness.servers import Server, example_config, running_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(Path(tmp_path_factory.mktemp("webhook"))) as running:
        yield running


@pytest.fixture(scope="module")
def one_worker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A webhook of its own for the module, with one worker: every client meets the one
    event loop and the one set of bounds (per worker) that the module tests."""
    workdir = Path(tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]))
    config = example_config(workdir)
    config["server"].update(workers=1, threads=4)
    with running_server(workdir, config) as running:
        yield running


@pytest.fixture(scope="session")
def docker_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The real CNCF distribution registry on 127.0.0.1 (fails, never skips, when missing)."""
    with running_registry(Path(tmp_path_factory.mktemp("registry"))) as running:
        yield running
