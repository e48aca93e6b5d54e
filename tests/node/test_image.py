"""The image built from the Dockerfile, as the chart runs it: non-root numeric user, read-only
root filesystem, every capability dropped; git present; the command answers."""

from __future__ import annotations

from harness.controlplane import images
from harness.controlplane.nodecluster import NodeCluster
from tests.node.cluster import exec_in, webhook_pods


def test_the_webhook_image_runs_as_the_chart_runs_it(node_cluster: NodeCluster) -> None:
    [pod, *_] = webhook_pods(node_cluster)
    name = pod["metadata"]["name"]
    [status] = pod["status"]["containerStatuses"]
    [container] = pod["spec"]["containers"]  # the chart's, naming a tag of the built image
    repository, _, tag = container["image"].rpartition(":")
    assert repository == node_cluster.registry.reference(images.WEBHOOK_NAME)
    built = node_cluster.registry.digest(images.WEBHOOK_NAME, tag)
    assert status["imageID"].endswith(f"@{built}"), status["imageID"]
    identity = exec_in(
        node_cluster, name, "python", "-c", "import os; print(os.getuid(), os.getgid())"
    )
    assert identity.stdout.split() == ["10001", "10001"], identity.stderr
    capabilities = exec_in(node_cluster, name, "grep", "^CapEff:", "/proc/1/status")
    assert capabilities.stdout.split() == ["CapEff:", "0000000000000000"], capabilities
    written = exec_in(node_cluster, name, "touch", "/usr/local/written")
    assert written.returncode != 0
    assert "Read-only file system" in written.stderr


def test_the_image_has_git_and_answers(node_cluster: NodeCluster) -> None:
    [pod, *_] = webhook_pods(node_cluster)
    name = pod["metadata"]["name"]
    git = exec_in(node_cluster, name, "git", "--version")
    assert git.returncode == 0, git
    assert git.stdout.startswith("git version"), git
    helped = exec_in(node_cluster, name, "jetstream-pin", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "serve" in helped.stdout
    assert "explain" in helped.stdout


def test_the_image_ships_the_status_page_templates(node_cluster: NodeCluster) -> None:
    """The templates and stylesheet are package data: installed from the wheel, not the tree."""
    [pod, *_] = webhook_pods(node_cluster)
    rendered = exec_in(
        node_cluster, pod["metadata"]["name"], "python", "-c",
        "from webhook.insight.rendering import TEMPLATES\n"
        "from webhook.insight.status_page import STYLE\n"
        "print(TEMPLATES.get_template('status.html').filename)\n"
        "print(TEMPLATES.get_template('timeline.svg').filename)\n"
        "print(len(STYLE))",
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    status, timeline, style = rendered.stdout.split()
    assert status.startswith("/usr/local/lib/python3.11/site-packages/webhook/"), status
    assert timeline.endswith("/webhook/insight/templates/timeline.svg"), timeline
    assert int(style) > 1000
