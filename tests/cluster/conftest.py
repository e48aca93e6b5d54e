"""Tests through the real kube-apiserver (and etcd), built by scripts/get-kube.

`control_plane` is one API server for the session. `deploy` starts a webhook
server with a given configuration, gives it the chart's identity (its own
release, ServiceAccount, RBAC and overrides ConfigMap) and registers the chart's
webhook configuration for a namespace of its own, so tests with different
configurations never see each other's webhooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.controlplane import registration, release, tools
from harness.controlplane.client import Answer, create_in
from harness.controlplane.plane import ControlPlane, running_control_plane


def _start(tmp: Path, version: str | None) -> Iterator[ControlPlane]:
    try:
        with running_control_plane(tmp, version) as plane:
            release.bootstrap(plane)
            yield plane
    except tools.ToolMissing as err:
        pytest.fail(str(err))


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    yield from _start(tmp_path_factory.mktemp("control-plane"), None)


@pytest.fixture(scope="session")
def oldest_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """The oldest Kubernetes the chart claims to support (built by scripts/get-kube)."""
    try:
        version = tools.oldest_version()
    except tools.ToolMissing as err:
        pytest.fail(str(err))
    yield from _start(tmp_path_factory.mktemp("control-plane-oldest"), version)


@pytest.fixture(scope="session")
def policy_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """Kubernetes 1.30, the oldest with ValidatingAdmissionPolicy v1 (the chart's policy)."""
    try:
        version = tools.version_of_minor(30)
    except tools.ToolMissing as err:
        pytest.fail(str(err))
    yield from _start(tmp_path_factory.mktemp("control-plane-1.30"), version)


@dataclass
class Deployment:
    """One webhook server registered for its own namespace."""

    plane: ControlPlane
    webhook: release.Webhook
    namespace: str
    values: dict[str, Any]

    @property
    def release(self) -> str:
        return self.webhook.release

    @property
    def configuration_name(self) -> str:
        return release.fullname(self.release)

    def create(self, pod: dict[str, Any], dry_run: bool = False, named: bool = False) -> Answer:
        """Create in this deployment's namespace (`create_in`)."""
        return create_in(self.plane, self.namespace, pod, dry_run, named)

    def register(self, host: str = "127.0.0.1", ca_pem: bytes | None = None) -> None:
        """(Re-)register the chart's configuration, calling the webhook at `host`."""
        url = self.webhook.mutate_url.replace("127.0.0.1", host)
        configuration = registration.configuration(
            self.release, url, ca_pem or self.webhook.ca_pem, self.plane.version, self.values
        )
        registration.register(self.plane, configuration, self.namespace)


Deploy = Callable[..., Deployment]


@pytest.fixture(scope="module")
def deploy(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deploy]:
    """Deployments live until the end of the test module; each name once per session."""
    tmp_path = tmp_path_factory.mktemp("deployments")
    started: list[Deployment] = []

    def make(
        name: str,
        kubernetes: bool = True,
        chart: dict[str, Any] | None = None,
        **config: Any,
    ) -> Deployment:
        namespace = control_plane.namespace(name)
        values = release.chart_values([namespace], **(chart or {}))
        release.install_identity(control_plane, name, values)
        workdir = tmp_path / name
        workdir.mkdir()
        settings = release.webhook_config(control_plane, workdir, name, kubernetes, **config)
        webhook = release.start_webhook(workdir, name, settings)
        deployment = Deployment(control_plane, webhook, namespace, values)
        started.append(deployment)
        deployment.register()
        return deployment

    yield make
    for deployment in started:
        registration.unregister(control_plane, deployment.configuration_name)
        deployment.webhook.running.stop()
