"""HTTP for the remote sources: bounded time, errors as SourceError, credentials kept home.

Every remote source talks through `HttpClient`, so all of them time out the
same way, describe failures the same way (never echoing a token or a body
that might hold one), and attach credentials only to the hosts they were
configured for: an address taken from an answer (a paging link, a token
realm) on another host gets no Authorization header.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from webhook.sources import SourceError

AuthHeaders = Callable[[], Mapping[str, str]]
USER_AGENT = "jetstream-pin"


def host_of(url: str) -> str:
    """`scheme://host:port` of a URL, lowercased: the unit credentials are scoped to."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class HttpClient:
    def __init__(
        self,
        source: str,
        base_url: str,
        timeout: float,
        auth: AuthHeaders | None = None,
        credential_hosts: Collection[str] = (),
        session: requests.Session | None = None,
    ) -> None:
        self.source = source
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.auth = auth
        self.credential_hosts = {host_of(self.base_url), *(host_of(h) for h in credential_hosts)}
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    def url(self, path: str) -> str:
        return urljoin(self.base_url, path.lstrip("/")) if "://" not in path else path

    def may_send_credentials(self, url: str) -> bool:
        return host_of(url) in self.credential_hosts

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
            response = self.session.get(
                url, params=params, headers=sent, timeout=self.timeout, allow_redirects=False
            )
        except requests.Timeout:
            raise SourceError(self.source, f"timed out after {self.timeout:g}s") from None
        except requests.ConnectionError:
            raise SourceError(self.source, f"cannot connect to {host_of(url)}") from None
        except requests.RequestException as err:
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
