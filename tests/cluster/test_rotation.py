"""Certificate rotation while the API server keeps creating pods: no create fails.

The pair comes from the chart's own certificate Job command, run as the Job's
ServiceAccount: it writes the Secret and sets the caBundle. Rotation is that
command re-issuing (the certificate is inside the renewal window): the Secret
gets a new CA and pair, the caBundle trusts the old and the new CA, and then
the new files land where the pod mounts the Secret, as the kubelet would write
them. Pods are created all along.
"""

from __future__ import annotations

import base64
import os
import ssl
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from harness.builders import argo_pod
from harness.controlplane.client import create_pod
from harness.controlplane.registration import RELEASE_NAMESPACE
from harness.controlplane.release import fullname
from tests.cluster.conftest import Deploy, Deployment
from tests.cluster.test_identities import run_certificate_job
from webhook import certs

SERVE_LOCALHOST = "--dns=localhost"  # the API server calls the webhook at https://localhost
RENEW_NOW = ("--days=400", "--renew-before-days=380")  # a 365-day pair is inside the window


def _secret_to_files(deployment: Deployment) -> str:
    """Write the Secret's pair where the server reads it, each file replaced atomically."""
    name = f"{fullname(deployment.release)}-tls"
    with deployment.plane.api() as api:
        secret: Any = k8s.CoreV1Api(api).read_namespaced_secret(name, RELEASE_NAMESPACE)
    folder = Path(deployment.webhook.config["server"]["certFile"]).parent
    for key in (certs.KEY_FILE, certs.CERT_FILE):
        staged = folder / f".{key}.new"
        staged.write_bytes(base64.b64decode(secret.data[key]))
        os.replace(staged, folder / key)
    return certs.fingerprint(base64.b64decode(secret.data[certs.CERT_FILE]))


def _served(deployment: Deployment) -> str:
    port = deployment.webhook.config["server"]["port"]
    pem = ssl.get_server_certificate(("127.0.0.1", port))
    return certs.fingerprint(pem.encode())


def _wait_served(deployment: Deployment, fingerprint: str) -> None:
    deployment.plane.wait_for(
        lambda: _served(deployment) == fingerprint, what="the new certificate to be served"
    )


def test_rotation_while_pods_are_created(deploy: Deploy) -> None:
    deployment = deploy("rotation")
    deployment.register(host="localhost")
    plane = deployment.plane
    # Install: the Job issues the first pair; the pod starts serving it.
    run_certificate_job(plane, deployment.release, SERVE_LOCALHOST)
    _wait_served(deployment, _secret_to_files(deployment))
    failures: list[str] = []
    created = 0
    stop = threading.Event()

    def keep_creating() -> None:
        nonlocal created
        with plane.api() as api:
            while not stop.is_set():
                answer = create_pod(plane, _pod(deployment, created), api=api)
                created += 1
                if answer.status != 201 or "jetstream/pin-reason" not in answer.annotations():
                    failures.append(f"{answer.status}: {answer.message}")

    creator = threading.Thread(target=keep_creating)
    creator.start()
    try:
        time.sleep(1)
        printed = run_certificate_job(plane, deployment.release, SERVE_LOCALHOST, *RENEW_NOW)
        assert "issued" in printed
        assert "caBundle (2 CA)" in printed, printed
        time.sleep(1)  # the API server trusts both CAs while the old pair is still served
        _wait_served(deployment, _secret_to_files(deployment))
        time.sleep(1)
    finally:
        stop.set()
        creator.join(timeout=30)
    assert created > 20
    assert failures == [], failures[:5]


def _pod(deployment: Deployment, number: int) -> dict[str, Any]:
    pod = argo_pod("my-experiment")
    pod["metadata"].update(name=f"rotation-{number}", namespace=deployment.namespace)
    return pod
