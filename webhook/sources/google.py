"""Google credentials for BigQuery, Artifact Registry and GCR: ADC or anonymous.

Application Default Credentials cover workload identity on GKE, a mounted
key file, and `gcloud auth application-default login`. The token is
refreshed here, under a lock, rather than through `AuthorizedSession`: the
Registry v2 flow needs its own Authorization header, which that session
would overwrite.
"""

from __future__ import annotations

import threading
from typing import Literal

import google.auth
import google.auth.credentials
import google.auth.exceptions
import google.auth.transport.requests

from webhook.sources import SourceError

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


class GoogleCredentials:
    def __init__(self, source: str, mode: Literal["default", "anonymous"] = "default") -> None:
        self.source = source
        self.mode = mode
        self._lock = threading.Lock()
        self._credentials: google.auth.credentials.Credentials | None = None

    def credentials(self) -> google.auth.credentials.Credentials:
        """The credentials object client libraries take (anonymous: no token at all)."""
        with self._lock:
            if self._credentials is None:
                self._credentials = self._load()
            return self._credentials

    def _load(self) -> google.auth.credentials.Credentials:
        if self.mode == "anonymous":
            return google.auth.credentials.AnonymousCredentials()  # type: ignore[no-untyped-call]
        try:
            credentials, _project = google.auth.default(scopes=[CLOUD_PLATFORM])
        except google.auth.exceptions.DefaultCredentialsError:
            raise SourceError(
                self.source,
                "no Google Application Default Credentials found (use workload identity, "
                "GOOGLE_APPLICATION_CREDENTIALS, or credentials: anonymous)",
            ) from None
        return credentials

    def token(self) -> str | None:
        """A valid access token, refreshed when needed; None for anonymous access."""
        credentials = self.credentials()
        if isinstance(credentials, google.auth.credentials.AnonymousCredentials):
            return None
        with self._lock:
            if not credentials.valid:
                try:
                    request = google.auth.transport.requests.Request()
                    credentials.refresh(request)  # type: ignore[no-untyped-call]
                except google.auth.exceptions.GoogleAuthError as err:
                    raise SourceError(
                        self.source, f"cannot refresh the Google token: {type(err).__name__}"
                    ) from None
            token: str | None = credentials.token
            return token

    def headers(self) -> dict[str, str]:
        token = self.token()
        return {"Authorization": f"Bearer {token}"} if token else {}
