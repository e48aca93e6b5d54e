"""One configured `kubernetes` API client, and its failures described as SourceErrors.

The client never retries (a retry would outlast the webhook's own deadline)
and every call carries the configured timeout. Failure messages carry the
status and the API host, never a body or a header: an answer may echo the
request, and the request carries the service account token.
"""

from __future__ import annotations

import os
from typing import Any

import urllib3.exceptions
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from webhook.config import ConfigError, KubernetesConfig
from webhook.sources import SourceError
from webhook.sources.http import host_of


def api_client(
    kubeconfig: os.PathLike[str] | str | None = None, context: str | None = None
) -> k8s.ApiClient:
    """A client from a kubeconfig file, else from the pod's service account."""
    configuration = k8s.Configuration()
    try:
        if kubeconfig is not None:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig),
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        else:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
    except (ConfigException, OSError) as err:
        if kubeconfig is not None:
            raise ConfigError(f"kubernetes: cannot load kubeconfig {kubeconfig}: {err}") from None
        raise ConfigError(
            f"kubernetes: cannot use the in-cluster service account ({err}); "
            "outside a pod, give a kubeconfig file"
        ) from None
    configuration.retries = 0
    return k8s.ApiClient(configuration)


def client_for(config: KubernetesConfig) -> k8s.ApiClient:
    return api_client(config.kubeconfig, config.context)


def api_host(api: k8s.ApiClient) -> str:
    return host_of(str(api.configuration.host))


def is_not_found(err: BaseException) -> bool:
    return isinstance(err, k8s.ApiException) and err.status == 404


def source_error(
    source: str, api: k8s.ApiClient, err: BaseException, timeout: float
) -> SourceError:
    return SourceError(source, describe(err, api_host(api), timeout))


def describe(err: BaseException, host: str, timeout: float) -> str:
    """What went wrong, in words safe for a pod's refusal message and a log line."""
    if isinstance(err, k8s.ApiException):
        status = err.status
        if status in (401, 403):
            return (
                f"HTTP {status} from the Kubernetes API at {host}: not authorized "
                "(check the service account's RBAC)"
            )
        if status == 429:
            return f"HTTP 429 from the Kubernetes API at {host}: rate limited"
        return f"HTTP {status} from the Kubernetes API at {host}"
    cause: Any = err.reason if isinstance(err, urllib3.exceptions.MaxRetryError) else err
    if isinstance(cause, urllib3.exceptions.NewConnectionError):  # a ConnectTimeoutError too
        return f"cannot connect to the Kubernetes API at {host}"
    if isinstance(cause, urllib3.exceptions.TimeoutError | TimeoutError):
        return f"the Kubernetes API at {host} timed out after {timeout:g}s"
    if isinstance(cause, urllib3.exceptions.SSLError):
        return f"TLS handshake with the Kubernetes API at {host} failed"
    if isinstance(cause, urllib3.exceptions.HTTPError | OSError):
        return f"cannot connect to the Kubernetes API at {host}"
    if isinstance(err, ValueError):
        return f"malformed answer from the Kubernetes API at {host}"
    return f"request to the Kubernetes API at {host} failed: {type(err).__name__}"
