"""Google credentials for BigQuery, Artifact Registry and GCR: ADC or anonymous.

Application Default Credentials cover workload identity on GKE, a mounted
key file, and `gcloud auth application-default login`. The token is
refreshed here, under a lock, rather than through `AuthorizedSession`: the
Registry v2 flow needs its own Authorization header, which that session
would overwrite. A refresh is bounded by the source's timeout (google-auth's
own default is two minutes), and BigQuery's session reads every answer
within its timeout in all, like `HttpClient`.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import google.auth
import google.auth.credentials
import google.auth.exceptions
import google.auth.transport.requests

from webhook.sources import SourceError
from webhook.sources.http import wall_clock_request

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


class BoundedRequest:
    """google-auth's transport with one timeout for every call it makes (token refreshes)."""

    def __init__(self, timeout: float) -> None:
        self.inner = google.auth.transport.requests.Request()
        self.timeout = timeout

    def __call__(
        self, url: str, method: str = "GET", body: Any = None, headers: Any = None, **kwargs: Any
    ) -> Any:
        kwargs["timeout"] = self.timeout
        return self.inner(url, method, body, headers, **kwargs)


class WallClockSession(google.auth.transport.requests.AuthorizedSession):
    """An authorized session whose every request, body included, ends within `timeout`."""

    def __init__(self, credentials: google.auth.credentials.Credentials, timeout: float) -> None:
        super().__init__(credentials, refresh_timeout=timeout)  # type: ignore[no-untyped-call]
        self.total_timeout = timeout

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> Any:
        kwargs.pop("timeout", None)
        kwargs.pop("stream", None)
        parent = super().request

        def send(**sent: Any) -> Any:
            return parent(method, url, *args, **sent)  # type: ignore[no-untyped-call]

        return wall_clock_request(send, self.total_timeout, **kwargs)


class GoogleCredentials:
    def __init__(
        self,
        source: str,
        mode: Literal["default", "anonymous"] = "default",
        timeout: float = 10.0,
    ) -> None:
        self.source = source
        self.mode = mode
        self.timeout = timeout
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
                    credentials.refresh(BoundedRequest(self.timeout))  # type: ignore[no-untyped-call]
                except google.auth.exceptions.GoogleAuthError as err:
                    raise SourceError(
                        self.source, f"cannot refresh the Google token: {type(err).__name__}"
                    ) from None
            token: str | None = credentials.token
            return token

    def headers(self) -> dict[str, str]:
        token = self.token()
        return {"Authorization": f"Bearer {token}"} if token else {}
