"""Server TLS: TLS 1.2 at least, and a certificate picked up again when its files change.

The front end asks for an SSL context for every accepted connection. Loading the
key pair each time costs a millisecond per connection; never loading it
again would pin a certificate that cert-manager has long rotated. This keeps
one context and rebuilds it only when the files' identity changes, so new
connections see a new certificate while open connections finish on the old.

A rotation that cannot be loaded (a malformed certificate, a key of another
pair) keeps the last good pair serving, and is tried again only when the
files change once more, not on every connection. Under gunicorn the master
holds a context of its own, checks the files every second and is the one
that reports a failure (`reports`): one log line per change of the files,
naming them and the error, and one count in
`jetstream_pin_certificate_reload_failures_total`. A worker forked later
starts from the master's last good pair, and `expiry` is always that of the
certificate actually served, so the expiry alert keeps working.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from pathlib import Path

from cryptography import x509

from webhook import metrics

log = logging.getLogger(__name__)

_Stamp = tuple[tuple[int, int, int], ...]


class ReloadingContext:
    def __init__(self, cert_file: Path, key_file: Path, reports: bool = True) -> None:
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self.reports = reports  # False in gunicorn's workers: the master reports
        self._lock = threading.Lock()
        self._stamp: _Stamp | None = None
        self._failed: _Stamp | str | None = None  # what did not load: not tried until it changes
        self._context: ssl.SSLContext | None = None
        self._not_after: float | None = None

    def _current_stamp(self) -> _Stamp:
        stamps = []
        for path in (self.cert_file, self.key_file):
            info = os.stat(path)
            stamps.append((info.st_ino, info.st_size, info.st_mtime_ns))
        return tuple(stamps)

    def context(self) -> ssl.SSLContext:
        """The context for a new connection; raises only if no pair ever loaded."""
        try:
            stamp = self._current_stamp()
        except OSError as err:
            if self._context is None:
                raise
            self._failure(f"{err.strerror}: {err.filename}", err)  # mid-rotation, or gone
            return self._context
        if self._context is not None and stamp in (self._stamp, self._failed):
            return self._context
        with self._lock:
            if self._context is None or stamp not in (self._stamp, self._failed):
                self._load(stamp)
        assert self._context is not None
        return self._context

    def expiry(self) -> float | None:
        """notAfter of the certificate served now (seconds since the epoch); None: none loads."""
        try:
            self.context()
        except (OSError, ssl.SSLError, ValueError):
            return None
        return self._not_after

    def _load(self, stamp: _Stamp) -> None:
        try:
            context, not_after = server_context(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError, ValueError) as err:
            if self._context is None:
                raise
            self._failure(stamp, err)
            return
        if self._context is not None and self.reports:
            log.info("serving certificate reloaded from %s", self.cert_file)
        self._context, self._stamp, self._not_after, self._failed = context, stamp, not_after, None

    def _failure(self, what: _Stamp | str, err: Exception) -> None:
        if what == self._failed:
            return
        self._failed = what
        if not self.reports:
            return
        metrics.child(metrics.CERTIFICATE_RELOAD_FAILURES, "serving").inc()
        log.error(
            "cannot load the serving certificate %s with key %s (%s: %s); still serving the "
            "previous one until the files change again",
            self.cert_file,
            self.key_file,
            type(err).__name__,
            err,
        )


def server_context(cert_file: Path, key_file: Path) -> tuple[ssl.SSLContext, float]:
    """A server context for the pair, and the certificate's notAfter.

    The certificate is parsed first: for a malformed one, cryptography says what is
    wrong where OpenSSL only says "PEM lib".
    """
    not_after = x509.load_pem_x509_certificate(cert_file.read_bytes()).not_valid_after_utc
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    context.set_alpn_protocols(["http/1.1"])
    return context, not_after.timestamp()
