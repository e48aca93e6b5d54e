"""`helm install --wait` as a platform team runs it, self-managed certificates, both modes.

The session's release (enforce) was installed by the fixture: its certificate
Job completed, its replicas are Ready, the registration Job registered the
webhook with `clientConfig.service` and a caBundle that signs the serving
certificate, `helm test` passes, and a pod created with kubectl is stored
pinned: the API server called the webhook through its Service. A second
release in audit mode is installed while pods are created in its namespace:
none is refused, ever. `helm uninstall` of it leaves nothing cluster-wide.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from harness.controlplane.nodecluster import (
    STREAM_NAMESPACE,
    NodeCluster,
    chart_values,
    get,
)
from harness.controlplane.registration import RELEASE_NAMESPACE
from harness.podstream import PodStream, is_pinned, stream_pod

RELEASE = "jetstream-pin"
AUDIT_RELEASE = "jetstream-pin-audit"
AUDIT_NAMESPACE = "jetstream-pin-audit"
AUDIT_PODS = "audit-pods"
INSTANCE = "app.kubernetes.io/instance={}"


def test_install_waited_for_ready_replicas_and_its_jobs(node_cluster: NodeCluster) -> None:
    print(f"helm install --wait took {node_cluster.timings['helm install --wait']:.1f} s")
    deployment = get(node_cluster, "deployment", RELEASE, namespace=RELEASE_NAMESPACE)
    assert deployment["status"].get("readyReplicas") == deployment["spec"]["replicas"] == 2
    # The hook Jobs are deleted when they succeed (hook-succeeded); a failed one stays.
    jobs = get(node_cluster, "jobs", namespace=RELEASE_NAMESPACE)["items"]
    assert [j["metadata"]["name"] for j in jobs] == []
    secret = get(node_cluster, "secret", f"{RELEASE}-tls", namespace=RELEASE_NAMESPACE)
    assert secret["type"] == "kubernetes.io/tls"


def test_the_webhook_is_registered_through_its_service(node_cluster: NodeCluster) -> None:
    configuration = get(node_cluster, "mutatingwebhookconfiguration", RELEASE)
    [hook] = configuration["webhooks"]
    client = hook["clientConfig"]
    assert "url" not in client
    assert client["service"] == {
        "name": RELEASE, "namespace": RELEASE_NAMESPACE, "path": "/mutate", "port": 443,
    }  # fmt: skip
    secret = get(node_cluster, "secret", f"{RELEASE}-tls", namespace=RELEASE_NAMESPACE)
    serving = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    authorities = x509.load_pem_x509_certificates(base64.b64decode(client["caBundle"]))
    assert any(_issued_by(serving, ca) for ca in authorities)


def _issued_by(certificate: x509.Certificate, authority: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(authority)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def test_helm_test_passes(node_cluster: NodeCluster) -> None:
    done = node_cluster.helm("test", RELEASE, f"--namespace={RELEASE_NAMESPACE}")
    assert "Phase:          Succeeded" in done.stdout or "Succeeded" in done.stdout, done.stdout


def test_a_pod_created_with_kubectl_is_stored_pinned(node_cluster: NodeCluster) -> None:
    created = node_cluster.plane.kubectl(
        "create", "-o", "json", "-f", "-", input_text=json.dumps(stream_pod(STREAM_NAMESPACE))
    )
    pod = json.loads(created.stdout)
    assert is_pinned(pod), pod["spec"]["containers"]
    [main] = [c for c in pod["spec"]["containers"] if c["name"] == "main"]
    breaking = node_cluster.release_digest("breaking")  # my-experiment enrolled before it
    assert main["image"].endswith(f"@{breaking}")
    assert pod["metadata"]["annotations"]["jetstream/pin-reason"] == "breaking"


def _leftovers(cluster: NodeCluster, release: str) -> dict[str, list[str]]:
    kinds = ["mutatingwebhookconfigurations", "validatingadmissionpolicies",
             "validatingadmissionpolicybindings", "clusterroles",
             "clusterrolebindings"]  # fmt: skip
    found: dict[str, list[str]] = {}
    for kind in kinds:
        items = get(cluster, kind, "-l", INSTANCE.format(release))["items"]
        named = get(cluster, kind)["items"]  # the registered configuration carries no chart label
        names = {i["metadata"]["name"] for i in items}
        names |= {i["metadata"]["name"] for i in named if i["metadata"]["name"] == release}
        if names:
            found[kind] = sorted(names)
    jobs = get(cluster, "jobs", namespace=AUDIT_NAMESPACE)["items"]
    if jobs:
        found["jobs"] = [j["metadata"]["name"] for j in jobs]
    return found


def test_audit_install_refuses_nothing_and_uninstall_leaves_nothing(
    node_cluster: NodeCluster,
) -> None:
    plane = node_cluster.plane
    node_cluster.prepare_release(AUDIT_NAMESPACE, AUDIT_PODS)
    values: dict[str, Any] = chart_values(
        node_cluster.registry, node_cluster.tag, mode="audit",
        webhook={"namespaces": [AUDIT_PODS]},
    )  # fmt: skip
    with PodStream(plane, AUDIT_PODS, per_second=3) as stream:
        stream.wait_for(3)
        seconds = node_cluster.install(values, name=AUDIT_RELEASE, namespace=AUDIT_NAMESPACE)
        stream.wait_for(6)
    print(f"audit install ({seconds:.1f} s) under a pod stream: {stream.summary()}")
    assert stream.failed == [], stream.summary()
    assert stream.created >= 9
    done = node_cluster.helm("test", AUDIT_RELEASE, f"--namespace={AUDIT_NAMESPACE}")
    assert "Succeeded" in done.stdout, done.stdout

    assert _leftovers(node_cluster, AUDIT_RELEASE)  # what there is to remove
    node_cluster.helm("uninstall", AUDIT_RELEASE, f"--namespace={AUDIT_NAMESPACE}", "--wait")
    plane.wait_for(
        lambda: not _leftovers(node_cluster, AUDIT_RELEASE), 60,
        "helm uninstall to leave nothing", lambda: _leftovers(node_cluster, AUDIT_RELEASE),
    )  # fmt: skip
