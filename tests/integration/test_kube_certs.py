"""The certificate hook against the API server stand-in: Secret kept, caBundle patched."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from harness.standins.apiserver import RunningApiServer, api_server
from webhook import certs
from webhook.cli import main
from webhook.kube.certificates import ensure_secret, patch_ca_bundle
from webhook.kube.client import api_client
from webhook.sources import SourceError

NAMES = ["jetstream-pin", "jetstream-pin.jetstream-pin", "jetstream-pin.jetstream-pin.svc"]


@pytest.fixture
def now() -> datetime:
    """Read per test: certificates are issued at the real time, and a time read at import
    is minutes older in a long run, before their validity starts."""
    return datetime.now(UTC)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[RunningApiServer]:
    with api_server(tmp_path) as server:
        yield server


def _cert_names(pem: bytes) -> list[str]:
    cert = x509.load_pem_x509_certificate(pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName)


def test_secret_is_written_then_reused(api: RunningApiServer, now: datetime) -> None:
    client = api_client(api.kubeconfig)
    first = ensure_secret(client, "jetstream-pin", "tls", NAMES, 365, timedelta(days=30), now)
    assert first.issued
    assert first.why == "the Secret does not exist"
    secret = api.cluster.secret("jetstream-pin", "tls")
    assert secret["type"] == "kubernetes.io/tls"
    assert sorted(secret["data"]) == ["ca.crt", "tls.crt", "tls.key"]
    assert secret["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "jetstream-pin"}
    assert api.cluster.secret_file("jetstream-pin", "tls", "tls.crt") == first.bundle.cert_pem
    assert _cert_names(first.bundle.cert_pem) == NAMES
    assert first.ca_bundle == first.bundle.ca_pem

    again = ensure_secret(client, "jetstream-pin", "tls", NAMES, 365, timedelta(days=30), now)
    assert not again.issued
    assert again.bundle == first.bundle
    assert [c.method for c in api.stand_in.calls("/api/v1/namespaces/jetstream-pin/secrets")] == [
        "GET", "POST", "GET",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("names", "renew_days", "why"),
    [
        (NAMES, 400, "expires"),  # inside the renewal window
        ([*NAMES, "jetstream-pin.jetstream-pin.svc.cluster.local"], 30, "does not name"),
    ],
    ids=["renewal window", "new DNS name"],
)
def test_secret_is_reissued_and_the_old_ca_stays_trusted(
    api: RunningApiServer, names: list[str], renew_days: int, why: str, now: datetime
) -> None:
    client = api_client(api.kubeconfig)
    first = ensure_secret(client, "ns", "tls", NAMES, 365, timedelta(days=30), now)
    second = ensure_secret(client, "ns", "tls", names, 500, timedelta(days=renew_days), now)
    assert second.issued
    assert why in second.why
    assert second.bundle.ca_pem != first.bundle.ca_pem
    assert api.cluster.secret_file("ns", "tls", "ca.crt") == second.bundle.ca_pem
    assert api.cluster.secret_file("ns", "tls", "ca-previous.crt") == first.bundle.ca_pem
    assert second.ca_bundle == second.bundle.ca_pem + first.bundle.ca_pem
    reused = ensure_secret(client, "ns", "tls", names, 500, timedelta(days=30), now)
    assert not reused.issued
    assert reused.ca_bundle == second.ca_bundle  # both CAs until the old one expires


def test_a_mismatched_secret_is_reissued(api: RunningApiServer, now: datetime) -> None:
    one, other = certs.issue(NAMES), certs.issue(NAMES)
    api.cluster.add_secret("ns", "tls", {
        "type": "kubernetes.io/tls",
        "data": {"ca.crt": base64.b64encode(other.ca_pem).decode(),
                 "tls.crt": base64.b64encode(one.cert_pem).decode(),
                 "tls.key": base64.b64encode(one.key_pem).decode()},
    })  # fmt: skip
    outcome = ensure_secret(api_client(api.kubeconfig), "ns", "tls", NAMES, 365, timedelta(1), now)
    assert outcome.issued
    assert outcome.why == "the stored certificate is not signed by the stored CA"
    assert api.stand_in.calls()[-1].method == "PUT"


def test_a_secret_of_another_type_is_left_alone(api: RunningApiServer, now: datetime) -> None:
    api.cluster.add_secret("ns", "tls", {"type": "Opaque", "data": {"x": "eQ=="}})
    with pytest.raises(SourceError, match=r"has type Opaque, not kubernetes\.io/tls"):
        ensure_secret(api_client(api.kubeconfig), "ns", "tls", NAMES, 365, timedelta(1), now)
    assert api.cluster.secret("ns", "tls")["data"] == {"x": "eQ=="}


def test_ca_bundle_is_patched_on_every_webhook(api: RunningApiServer) -> None:
    api.cluster.add_webhook("jetstream-pin", ["pods.jetstream-pin.mozilla.org", "second.example"])
    client = api_client(api.kubeconfig)
    ca = certs.issue(NAMES).ca_pem
    assert patch_ca_bundle(client, "jetstream-pin", ca) == 2
    for hook in api.cluster.webhooks["jetstream-pin"]["webhooks"]:
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == ca
        assert hook["clientConfig"]["service"]["name"] == "svc"  # the rest is untouched
    assert patch_ca_bundle(client, "absent", ca) is None


def test_certs_command_in_cluster(
    api: RunningApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    api.cluster.add_webhook("jetstream-pin", ["pods.jetstream-pin.mozilla.org"])
    argv = ["certs", "--kubeconfig", str(api.kubeconfig),
            "--secret", "jetstream-pin/jetstream-pin-tls", "--webhook", "jetstream-pin",
            *(f"--dns={n}" for n in NAMES)]  # fmt: skip
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "secret jetstream-pin/jetstream-pin-tls: issued (the Secret does not exist)" in first
    assert (
        "mutatingwebhookconfiguration jetstream-pin: caBundle (1 CA) set on 1 webhook(s)" in first
    )
    ca = api.cluster.secret_file("jetstream-pin", "jetstream-pin-tls", "ca.crt")
    hook = api.cluster.webhooks["jetstream-pin"]["webhooks"][0]
    assert base64.b64decode(hook["clientConfig"]["caBundle"]) == ca
    fingerprint = certs.fingerprint(
        api.cluster.secret_file("jetstream-pin", "jetstream-pin-tls", "tls.crt")
    )
    assert f"certificate sha256 {fingerprint}" in first

    assert main(argv) == 0
    assert "reused (still valid)" in capsys.readouterr().out
    assert api.cluster.secret_file("jetstream-pin", "jetstream-pin-tls", "ca.crt") == ca


def test_certs_command_before_the_webhook_exists(
    api: RunningApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["certs", "--kubeconfig", str(api.kubeconfig), "--secret", "ns/tls",
            "--webhook", "jetstream-pin", "--dns", "svc.ns.svc"]  # fmt: skip
    assert main(argv) == 2
    assert "mutatingwebhookconfiguration jetstream-pin does not exist" in capsys.readouterr().err
    assert main([*argv, "--allow-missing-webhook"]) == 0
    assert "not there yet, caBundle not set" in capsys.readouterr().out


def test_certs_command_reports_api_failures_in_one_line(
    api: RunningApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    api.cluster.failing["/secrets"] = 403
    argv = ["certs", "--kubeconfig", str(api.kubeconfig), "--secret", "ns/tls", "--dns", "svc"]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("jetstream-pin certs: Kubernetes API: HTTP 403")
    assert error.count("\n") == 1


def test_keep_from_helm_marks_only_a_configuration_helm_rendered(
    api: RunningApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before an upgrade to the Job-registered configuration, one a chart rendered as its
    own object is kept from Helm's deletion; one the Job registered (owned) is not touched."""
    api.cluster.add_webhook("jetstream-pin", ["pods.jetstream-pin.mozilla.org"])
    rendered = api.cluster.webhooks["jetstream-pin"]["metadata"]
    rendered["annotations"] = {"meta.helm.sh/release-name": "jetstream-pin"}

    def argv(webhook: str) -> list[str]:
        return ["certs", "--kubeconfig", str(api.kubeconfig),
                "--secret", "jetstream-pin/jetstream-pin-tls", "--webhook", webhook,
                "--keep-from-helm", *(f"--dns={n}" for n in NAMES)]  # fmt: skip

    assert main(argv("jetstream-pin")) == 0
    assert "kept through the upgrade" in capsys.readouterr().out
    annotations = api.cluster.webhooks["jetstream-pin"]["metadata"]["annotations"]
    assert annotations["helm.sh/resource-policy"] == "keep"

    api.cluster.add_webhook("registered", ["pods.jetstream-pin.mozilla.org"])
    owned = api.cluster.webhooks["registered"]["metadata"]
    owned["annotations"] = {"meta.helm.sh/release-name": "jetstream-pin"}
    owned["ownerReferences"] = [{"apiVersion": "rbac.authorization.k8s.io/v1",
                                 "kind": "ClusterRole", "name": "x-renew", "uid": "u"}]  # fmt: skip
    assert main(argv("registered")) == 0
    assert "kept through" not in capsys.readouterr().out
    assert "helm.sh/resource-policy" not in owned["annotations"]
