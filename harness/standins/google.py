"""Real google-auth credentials whose token endpoint is a local stand-in.

A service-account key file (a fresh RSA key, `token_uri` pointing at the
stand-in) makes `google.auth.default()` load real credentials; refreshing
them posts a signed JWT to the stand-in, which answers an access token. The
whole ADC path runs, with no Google host contacted.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.standins.base import Reply, Request, json_reply


@dataclass
class GoogleStandIn:
    """The OAuth token endpoint: each refresh issues a new access token."""

    issued: list[str] = field(default_factory=list)
    _serial: Any = field(default_factory=itertools.count)

    def __call__(self, request: Request) -> Reply:
        form = request.body.decode()
        if "grant_type=urn" not in form or "assertion=" not in form:
            return json_reply({"error": "invalid_grant"}, 400)
        token = f"ya29.google-access-token-{next(self._serial)}"
        self.issued.append(token)
        return json_reply({"access_token": token, "expires_in": 3600, "token_type": "Bearer"})


def service_account_file(directory: Path, token_uri: str) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = directory / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "moz-fx-data-experiments",
                "private_key_id": "test-key",
                "private_key": pem,
                "client_email": "jetstream-pin@moz-fx-data-experiments.iam.gserviceaccount.com",
                "client_id": "1234567890",
                "token_uri": token_uri,
            }
        )
    )
    return path


def use_service_account(monkeypatch: pytest.MonkeyPatch, directory: Path, token_uri: str) -> None:
    """Point Application Default Credentials at a key file whose tokens come from `token_uri`."""
    monkeypatch.setenv(
        "GOOGLE_APPLICATION_CREDENTIALS", str(service_account_file(directory, token_uri))
    )
