"""HTTP for the remote sources: bounded time, errors as SourceError, credentials kept home.

Every remote source talks through `HttpClient`, so all of them time out the
same way, describe failures the same way (never echoing a token or a body
that might hold one), and attach credentials only to the hosts they were
configured for: an address taken from an answer (a paging link, a token
realm) on another host gets no Authorization header.

`timeoutSeconds` is wall-clock for the whole request, not per read:
`requests` alone restarts its read timeout at every byte, so a backend
dripping a few bytes a second would hold the call for as long as it likes.
The body is read in chunks and the clock checked between them; a request
ends at most one read gap after its timeout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

from webhook.sources import SourceError

AuthHeaders = Callable[[], Mapping[str, str]]
USER_AGENT = "jetstream-pin"
CHUNK_BYTES = 65536
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # far above any listing; a bound, not a limit in use


def host_of(url: str) -> str:
    """`scheme://host:port` of a URL, lowercased: the unit credentials are scoped to."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class CredentialScope:
    """Where one credential may be sent: its home host and the hosts configured for it."""

    def __init__(self, home: str, others: Collection[str] = ()) -> None:
        self.hosts = frozenset({host_of(home), *(host_of(h) for h in others)})

    def allows(self, url: str) -> bool:
        return host_of(url) in self.hosts


class HttpClient:
    def __init__(
        self,
        source: str,
        base_url: str,
        timeout: float,
        auth: AuthHeaders | None = None,
        credential_hosts: Collection[str] = (),
        session: requests.Session | None = None,
        ca_file: str | None = None,
    ) -> None:
        self.source = source
        # Per request: requests lets REQUESTS_CA_BUNDLE override a session's `verify`.
        self.verify: str | bool = ca_file or True
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.auth = auth
        self.credential_scope = CredentialScope(self.base_url, credential_hosts)
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    def url(self, path: str) -> str:
        return urljoin(self.base_url, path.lstrip("/")) if "://" not in path else path

    def may_send_credentials(self, url: str) -> bool:
        return self.credential_scope.allows(url)

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: Collection[int] = (200,),
        authenticate: bool = True,
    ) -> requests.Response:
        """GET with the source's timeout; any status outside `ok` is a SourceError."""
        url = self.url(path)
        sent = dict(headers or {})
        if authenticate and self.auth is not None and self.may_send_credentials(url):
            sent.update(self.auth())
        try:
            response = wall_clock_request(
                self.session.get,
                self.timeout,
                url=url,
                params=params,
                headers=sent,
                allow_redirects=False,
                verify=self.verify,
            )
        except requests.Timeout:
            raise SourceError(self.source, f"timed out after {self.timeout:g}s") from None
        except requests.exceptions.SSLError:
            raise SourceError(
                self.source, f"TLS with {host_of(url)} failed: its certificate is not trusted"
            ) from None
        except requests.ConnectionError:
            raise SourceError(self.source, f"cannot connect to {host_of(url)}") from None
        except AnswerTooLarge:
            raise SourceError(self.source, "answer larger than 64 MiB") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
            raise SourceError(self.source, f"request failed: {type(err).__name__}") from None
        if response.status_code not in ok:
            raise SourceError(self.source, describe_status(response))
        return response

    def get_json(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: Collection[int] = (200,),
    ) -> Any:
        return parse_json(self.source, self.get(path, params, headers, ok))


class AnswerTooSlow(requests.Timeout):
    """The body was still arriving when the request's wall-clock time ran out."""


class AnswerTooLarge(requests.RequestException):
    pass


def read_body(response: requests.Response, expires: float) -> bytes:
    """A streamed response's whole body, checking the clock (time.monotonic) between reads."""
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            if time.monotonic() > expires:
                raise AnswerTooSlow("the answer was still arriving at the timeout")
            chunk = response.raw.read1(CHUNK_BYTES, decode_content=True)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise AnswerTooLarge(f"answer larger than {MAX_ANSWER_BYTES} bytes")
            chunks.append(chunk)
    except (TimeoutError, urllib3.exceptions.TimeoutError):
        raise AnswerTooSlow("no data within the read timeout") from None


def wall_clock_request(
    send: Callable[..., requests.Response], timeout: float, **kwargs: Any
) -> requests.Response:
    """`send(stream=True, timeout=..., **kwargs)` with the body read within `timeout` in all."""
    started = time.monotonic()
    response = send(stream=True, timeout=timeout, **kwargs)
    try:
        response._content = read_body(response, started + timeout)
    except BaseException:
        response.close()
        raise
    response.raw.release_conn()
    return response


def describe_status(response: requests.Response) -> str:
    where = host_of(response.url or "")
    code = response.status_code
    if code in (401, 403):
        return f"HTTP {code} from {where}: not authorized (check the credentials and their roles)"
    if code == 429:
        return f"HTTP 429 from {where}: rate limited"
    if 300 <= code < 400:
        return f"HTTP {code} from {where}: unexpected redirect"
    return f"HTTP {code} from {where}"


def parse_json(source: str, response: requests.Response) -> Any:
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        where = host_of(response.url or "")
        raise SourceError(source, f"malformed answer from {where}: not JSON") from None
