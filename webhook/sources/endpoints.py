"""Start-up checks of the addresses remote sources are configured with.

Credentials travel to these addresses, so they must be TLS (`https://`);
plain `http://` is accepted only for the loopback interface, where tests and
local mirrors run. The registry host of an image repository must be explicit
(`registry.example.com/team/app`), never guessed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from webhook.config import ConfigError

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def check_endpoint(endpoint: str | None, key: str) -> None:
    if endpoint is None:
        return
    parts = urlsplit(endpoint)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{key}: must be an https:// URL, got {endpoint[:80]!r}")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise ConfigError(
            f"{key}: plain http is only allowed to the loopback interface; use https://"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{key}: give a base URL without credentials, query or fragment")


def registry_host(repository: str, key: str) -> str:
    """`gcr.io/moz-fx-data-experiments/jetstream` -> `gcr.io`."""
    host, _, path = repository.partition("/")
    if not path or not ("." in host or ":" in host or host == "localhost"):
        raise ConfigError(
            f"{key}: {repository[:80]!r} must start with the registry host "
            "(e.g. gcr.io/moz-fx-data-experiments/jetstream)"
        )
    return host
