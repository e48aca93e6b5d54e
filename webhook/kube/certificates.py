"""The serving Secret and the webhook's caBundle, kept through the Kubernetes API.

This is what the chart's certificate hook Job runs (`jetstream-pin certs
--secret ... --webhook ...`) on every install and upgrade. A valid Secret is
reused (see `webhook.certs.why_not_reusable`), so upgrades do not churn
certificates. When a new pair is issued, the replaced CA stays in the Secret
as `ca-previous.crt` and in the caBundle until it expires: pods keep serving
the old certificate until the kubelet refreshes their volume, and the API
server must trust both meanwhile.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kubernetes import client as k8s

from webhook import certs
from webhook.kube.client import is_not_found, source_error
from webhook.sources import SourceError

SOURCE = "Kubernetes API"
TLS_TYPE = "kubernetes.io/tls"
PREVIOUS_CA = "ca-previous.crt"
MANAGED_BY = {"app.kubernetes.io/managed-by": "jetstream-pin"}


@dataclass(frozen=True)
class SecretOutcome:
    bundle: certs.Bundle
    issued: bool
    why: str
    ca_bundle: bytes  # what the webhook configuration must trust


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(data: dict[str, str], name: str) -> bytes:
    return base64.b64decode(data.get(name, ""))


def ensure_secret(
    api: k8s.ApiClient,
    namespace: str,
    name: str,
    dns_names: list[str],
    days: int,
    renew_before: timedelta,
    now: datetime,
    timeout: float = 10.0,
) -> SecretOutcome:
    """Reuse the Secret when it is still good, else issue a new pair and write it."""
    core = k8s.CoreV1Api(api)
    try:
        existing: Any = core.read_namespaced_secret(name, namespace, _request_timeout=timeout)
    except Exception as err:
        if not is_not_found(err):
            raise source_error(SOURCE, api, err, timeout) from None
        existing = None
    old: certs.Bundle | None = None
    why = "the Secret does not exist"
    if existing is not None:
        if existing.type != TLS_TYPE:
            raise SourceError(
                SOURCE,
                f"Secret {namespace}/{name} has type {existing.type}, not {TLS_TYPE}; "
                "delete it or choose another name",
            )
        data = existing.data or {}
        old = certs.Bundle(_unb64(data, "ca.crt"), _unb64(data, "tls.crt"), _unb64(data, "tls.key"))
        why = certs.why_not_reusable(old, dns_names, now, renew_before) or ""
        if not why:
            trusted = [old.ca_pem, *_still_valid(_unb64(data, PREVIOUS_CA), now)]
            return SecretOutcome(old, False, "still valid", b"".join(dict.fromkeys(trusted)))
    bundle = certs.issue(dns_names, days=days)
    previous = _still_valid(old.ca_pem, now) if old is not None else []
    secret_data = {
        "ca.crt": _b64(bundle.ca_pem),
        "tls.crt": _b64(bundle.cert_pem),
        "tls.key": _b64(bundle.key_pem),
    }
    if previous:
        secret_data[PREVIOUS_CA] = _b64(previous[0])
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": MANAGED_BY},
        "type": TLS_TYPE,
        "data": secret_data,
    }
    if existing is not None:
        body["metadata"]["resourceVersion"] = existing.metadata.resource_version
    secret = k8s.V1Secret.from_dict(body)
    assert secret is not None
    try:
        if existing is None:
            core.create_namespaced_secret(namespace, secret, _request_timeout=timeout)
        else:
            core.replace_namespaced_secret(name, namespace, secret, _request_timeout=timeout)
    except Exception as err:
        raise source_error(SOURCE, api, err, timeout) from None
    return SecretOutcome(bundle, True, why, b"".join([bundle.ca_pem, *previous]))


def _still_valid(pem: bytes, now: datetime) -> list[bytes]:
    try:
        return certs.unexpired_certificates(pem, now)
    except ValueError:
        return []


def read_webhook_configuration(api: k8s.ApiClient, name: str, timeout: float) -> Any | None:
    """The MutatingWebhookConfiguration `name`, or None if there is none."""
    try:
        return k8s.AdmissionregistrationV1Api(api).read_mutating_webhook_configuration(
            name, _request_timeout=timeout
        )
    except Exception as err:
        if is_not_found(err):
            return None
        raise source_error(SOURCE, api, err, timeout) from None


def patch_ca_bundle(
    api: k8s.ApiClient, webhook: str, ca_bundle: bytes, timeout: float = 10.0
) -> int | None:
    """Set caBundle on every webhook of a MutatingWebhookConfiguration; None if it is absent."""
    admission = k8s.AdmissionregistrationV1Api(api)
    configuration = read_webhook_configuration(api, webhook, timeout)
    if configuration is None:
        return None
    operations: list[dict[str, Any]] = []
    hooks = configuration.webhooks or []
    for index, hook in enumerate(hooks):
        # `test` makes the patch fail rather than touch a webhook that moved meanwhile.
        operations.append({"op": "test", "path": f"/webhooks/{index}/name", "value": hook.name})
        path = f"/webhooks/{index}/clientConfig/caBundle"
        operations.append({"op": "add", "path": path, "value": _b64(ca_bundle)})
    if operations:
        try:
            admission.patch_mutating_webhook_configuration(
                webhook,
                operations,
                _request_timeout=timeout,
                _content_type="application/json-patch+json",
            )
        except Exception as err:
            raise source_error(SOURCE, api, err, timeout) from None
    return len(hooks)
