"""Registry credentials from a Docker config file (`.dockerconfigjson` of a pull secret).

The operator mounts an existing `kubernetes.io/dockerconfigjson` Secret and
points `authFile` at it; the entry for the registry host gives the username
and password. The file is read at every token exchange, so a rotated Secret
is picked up without a restart. Errors name the file and the problem, never
its content.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class AuthFileError(ValueError):
    pass


def registry_key(entry: str) -> str:
    """`https://Host:5000/v1/` and `host:5000` both name the registry `host:5000`."""
    text = entry.strip()
    netloc = urlsplit(text).netloc if "://" in text else text.split("/")[0]
    return netloc.lower()


def read_auth_file(path: Path, hosts: Sequence[str]) -> tuple[str, str]:
    """The username and password of the first of `hosts` (host[:port]) the file has."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise AuthFileError(f"authFile {path}: cannot read: {err.strerror or err}") from None
    except (ValueError, UnicodeDecodeError):
        raise AuthFileError(f"authFile {path}: not JSON") from None
    auths = document.get("auths") if isinstance(document, Mapping) else None
    if not isinstance(auths, Mapping):
        raise AuthFileError(f"authFile {path}: no 'auths' object (expected a Docker config file)")
    entries = {registry_key(k): v for k, v in auths.items() if isinstance(k, str)}
    wanted = [registry_key(host) for host in hosts]
    for host in wanted:
        if host in entries:
            return _user_password(entries[host], path, host)
    names = " or ".join(dict.fromkeys(wanted))
    raise AuthFileError(f"authFile {path}: no entry for registry {names}")


def _user_password(entry: Any, path: Path, host: str) -> tuple[str, str]:
    where = f"authFile {path}: entry {host}"
    if not isinstance(entry, Mapping):
        raise AuthFileError(f"{where}: not an object")
    user, password = entry.get("username"), entry.get("password")
    if isinstance(user, str) and isinstance(password, str) and user:
        return user, password
    encoded = entry.get("auth")
    if isinstance(encoded, str):
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthFileError(f"{where}: 'auth' is not base64 of user:password") from None
        user, sep, password = decoded.partition(":")
        if sep and user:
            return user, password
        raise AuthFileError(f"{where}: 'auth' is not base64 of user:password")
    raise AuthFileError(f"{where}: needs 'auth' or 'username' and 'password'")
