"""Server TLS: TLS 1.2 at least, and a certificate picked up again when its files change.

The front end asks for an SSL context for every accepted connection. Loading the
key pair each time costs a millisecond per connection; never loading it
again would pin a certificate that cert-manager has long rotated. This keeps
one context and rebuilds it only when the files' identity changes, so new
connections see a new certificate while open connections finish on the old.
"""

from __future__ import annotations

import os
import ssl
import threading
from pathlib import Path

_Stamp = tuple[tuple[int, int, int], ...]


class ReloadingContext:
    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self._lock = threading.Lock()
        self._stamp: _Stamp | None = None
        self._context: ssl.SSLContext | None = None

    def _current_stamp(self) -> _Stamp:
        stamps = []
        for path in (self.cert_file, self.key_file):
            info = os.stat(path)
            stamps.append((info.st_ino, info.st_size, info.st_mtime_ns))
        return tuple(stamps)

    def context(self) -> ssl.SSLContext:
        try:
            stamp = self._current_stamp()
        except OSError:
            if self._context is not None:
                return self._context  # mid-rotation: keep serving the last good pair
            raise
        with self._lock:
            if self._context is None or stamp != self._stamp:
                try:
                    self._context = server_context(self.cert_file, self.key_file)
                    self._stamp = stamp
                except (OSError, ssl.SSLError):
                    if self._context is None:
                        raise
        return self._context


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    context.set_alpn_protocols(["http/1.1"])
    return context
