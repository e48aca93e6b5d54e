"""Tests on a one-node cluster that really runs pods (`scripts/cluster up --node`'s code).

`node_cluster` is one cluster for the session: the network namespace, the
control plane, containerd, the kubelet and kube-proxy, the images built without
Docker, the chart installed with `helm install --wait`, and Argo's controller.
It is stopped and every trace removed when the session ends, failed or not.
The node needs root (network namespaces, cgroups, mounts).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.controlplane import tools
from harness.controlplane.nodecluster import NodeCluster

COLD_START_SECONDS = 1500


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            # The first test also waits for the cluster: a cold image build takes minutes.
            item.add_marker(pytest.mark.timeout(COLD_START_SECONDS))


@pytest.fixture(scope="session")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    if os.geteuid() != 0:
        pytest.fail("the node tests need root: network namespaces, cgroups and mounts")
    try:
        cluster = NodeCluster.up(tmp_path_factory.mktemp("node-cluster"))
    except tools.ToolMissing as err:
        pytest.fail(str(err))
    try:
        print(f"\nnode cluster up: {cluster.timings}")
        yield cluster
    finally:
        cluster.down()
