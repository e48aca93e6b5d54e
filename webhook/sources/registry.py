"""The Registry v2 / OCI distribution protocol, as far as reading image history needs it.

Shared by the `gcr`, `oci` and (for multi-arch indexes) `artifactregistry`
sources: the Bearer-token challenge, tag listing with `Link` paging, and
manifests and blobs fetched by reference with their digests checked.

Credentials stay home: a username and password (for GCR, `oauth2accesstoken`
and the Google access token) go only to the registry's own host and to a
token realm on that host or on a host the operator listed; a token realm or
paging link elsewhere is still used, but gets nothing secret. The token the
realm hands out is sent only to the registry host.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from base64 import b64encode
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import requests

from webhook.sources import SourceError
from webhook.sources.answers import Malformed, digest, field_of, mapping
from webhook.sources.headers import bearer_challenge, next_link, wants_basic
from webhook.sources.http import CredentialScope, HttpClient, host_of

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MANIFEST_ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])
CREATED_ANNOTATION = "org.opencontainers.image.created"

P = ParamSpec("P")
T = TypeVar("T")
BasicCredentials = Callable[[], tuple[str, str] | None]

_MAX_PAGES = 1000
_MAX_REDIRECTS = 3
_TOKEN_MARGIN_SECONDS = 10
_DEFAULT_TOKEN_SECONDS = 60  # the distribution token spec's default `expires_in`


@dataclass(frozen=True)
class Manifest:
    """A manifest as served: its digest (checked), media type and parsed body."""

    digest: str
    media_type: str
    body: Mapping[str, Any]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def children(self) -> list[str]:
        """Digests of an index's platform manifests."""
        entries = field_of(self.body, "manifests", "")
        if not isinstance(entries, list):
            raise Malformed("manifests", "expected a list")
        return [
            digest(field_of(mapping(e, f"manifests[{i}]"), "digest", f"manifests[{i}]"),
                   f"manifests[{i}].digest")
            for i, e in enumerate(entries)
        ]  # fmt: skip

    def annotation(self, name: str) -> Any:
        annotations = self.body.get("annotations")
        return annotations.get(name) if isinstance(annotations, Mapping) else None


class RegistryClient:
    """One repository on one registry, spoken to over Registry v2."""

    def __init__(
        self,
        source: str,
        endpoint: str,
        repository: str,
        timeout: float,
        credentials: BasicCredentials | None = None,
        credential_hosts: Collection[str] = (),
        clock: Callable[[], float] = time.monotonic,
        ca_file: Path | None = None,
    ) -> None:
        self.source = source
        self.repository = repository.strip("/")
        self.http = HttpClient(
            source, endpoint, timeout, auth=self._auth_headers,
            ca_file=None if ca_file is None else str(ca_file),
        )  # fmt: skip
        self.credentials = credentials
        # The user and password may go to the configured hosts (a token realm); the
        # registry's token only ever to the registry itself (self.http's own scope).
        self.password_scope = CredentialScope(self.http.base_url, credential_hosts)
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_expires = 0.0
        self._basic = False

    @property
    def where(self) -> str:
        return host_of(self.http.base_url)

    def path(self, *parts: str) -> str:
        return "/".join(["v2", quote(self.repository, safe="/"), *parts])

    def get(self, path: str, accept: str, params: Mapping[str, Any] | None = None,
            ok: Collection[int] = (200,)) -> requests.Response:  # fmt: skip
        """GET on the registry, answering one authentication challenge if it comes."""
        headers = {"Accept": accept}
        response = self.http.get(path, params, headers, ok=(*ok, 401))
        if response.status_code != 401:
            return response
        self._answer_challenge(response)
        return self.http.get(path, params, headers, ok=ok)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = self.get(path, "application/json", params)
        return self._json(response)

    def tag_pages(self, page_size: int = 1000) -> Iterator[Mapping[str, Any]]:
        """Each page of `tags/list`, following `Link: <...>; rel="next"` until the last."""
        url: str | None = self.http.url(self.path("tags", "list"))
        params: Mapping[str, Any] | None = {"n": page_size}
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= _MAX_PAGES:
                raise SourceError(self.source, f"tag list paging from {self.where} does not end")
            seen.add(url)
            response = self.get(url, "application/json", params)
            yield self.checked(mapping, self._json(response), "tags/list")
            url = next_link(response)
            params = None

    def manifest(self, reference: str) -> Manifest:
        """The manifest a tag or digest names, in whichever of the four types it has."""
        response = self.get(self.path("manifests", reference), MANIFEST_ACCEPT)
        computed = "sha256:" + hashlib.sha256(response.content).hexdigest()
        header = response.headers.get("Docker-Content-Digest", "").strip()
        if reference.startswith("sha256:") and computed != reference:
            raise SourceError(self.source, f"manifest {reference} from {self.where}: body does "
                              "not match its digest")  # fmt: skip
        if header.startswith("sha256:") and header != computed:
            raise SourceError(self.source, f"manifest {_short(reference)} from {self.where}: "
                              "Docker-Content-Digest does not match the body")  # fmt: skip
        body = self.checked(mapping, self._json(response), f"manifest {_short(reference)}")
        media_type = body.get("mediaType") or _bare(response.headers.get("Content-Type"))
        return Manifest(computed, str(media_type), body)

    def blob_json(self, blob_digest: str) -> Mapping[str, Any]:
        """A small JSON blob (an image config), following the registry's storage redirect."""
        url = self.http.url(self.path("blobs", blob_digest))
        redirects = (301, 302, 303, 307, 308)
        response = self.get(url, "application/json, */*", ok=(200, *redirects))
        for _ in range(_MAX_REDIRECTS):
            if response.status_code not in redirects:
                break
            location = response.headers.get("Location")
            if not location:
                raise SourceError(self.source, f"blob redirect from {self.where} has no Location")
            response = self.http.get(urljoin(response.url, location), ok=(200, *redirects))
        if response.status_code != 200:
            raise SourceError(self.source, f"blob {_short(blob_digest)}: too many redirects")
        if "sha256:" + hashlib.sha256(response.content).hexdigest() != blob_digest:
            raise SourceError(self.source, f"blob {blob_digest} from {self.where}: body does not "
                              "match its digest")  # fmt: skip
        return self.checked(mapping, self._json(response), f"blob {_short(blob_digest)}")

    def checked(self, read: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`read(*args)`, a malformed answer becoming a SourceError that names the field."""
        try:
            return read(*args, **kwargs)
        except Malformed as err:
            raise SourceError(self.source, f"malformed answer from {self.where}: {err}") from None

    def _json(self, response: requests.Response) -> Any:
        try:
            return json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            where = host_of(response.url or self.where)
            raise SourceError(self.source, f"malformed answer from {where}: not JSON") from None

    # -- authentication ------------------------------------------------------

    def _auth_headers(self) -> Mapping[str, str]:
        with self._lock:
            if self._token is not None and self._clock() < self._token_expires:
                return {"Authorization": f"Bearer {self._token}"}
            if self._basic:
                user_password = self._credentials_for(self.where)
                if user_password is not None:
                    return {"Authorization": _basic_header(*user_password)}
        return {}

    def _answer_challenge(self, response: requests.Response) -> None:
        header = response.headers.get("WWW-Authenticate")
        challenge = bearer_challenge(header)
        if challenge is not None:
            self._fetch_token(dict(challenge.params))
            return
        if wants_basic(header) and self._credentials_for(self.where) is not None:
            with self._lock:
                self._basic = True
            return
        raise SourceError(
            self.source,
            f"HTTP 401 from {self.where}: not authorized "
            + ("(no usable challenge)" if header else "(no WWW-Authenticate challenge)"),
        )

    def _fetch_token(self, params: dict[str, str]) -> None:
        realm = params.pop("realm", "")
        if urlsplit(realm).scheme not in ("http", "https"):
            raise SourceError(self.source, f"HTTP 401 from {self.where}: the token realm is not "
                              "an http(s) URL")  # fmt: skip
        query = {k: v for k, v in params.items() if k in ("service", "scope")}
        query.setdefault("scope", f"repository:{self.repository}:pull")
        headers: dict[str, str] = {"Accept": "application/json"}
        user_password = self._credentials_for(realm)
        if user_password is not None:
            headers["Authorization"] = _basic_header(*user_password)
        answer = self.http.get(realm, query, headers, authenticate=False)
        body = self.checked(mapping, self._json(answer), "token")
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            raise SourceError(self.source, f"malformed answer from {host_of(realm)}: token: "
                              "missing (neither token nor access_token)")  # fmt: skip
        lifetime = body.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = _DEFAULT_TOKEN_SECONDS
        with self._lock:
            self._token = token
            self._token_expires = self._clock() + max(lifetime - _TOKEN_MARGIN_SECONDS, 1)

    def _credentials_for(self, url: str) -> tuple[str, str] | None:
        if self.credentials is None or not self.password_scope.allows(url):
            return None
        return self.credentials()


def _basic_header(user: str, password: str) -> str:
    return "Basic " + b64encode(f"{user}:{password}".encode()).decode("ascii")


def _bare(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip()


def _short(reference: str) -> str:
    return reference[:19] if reference.startswith("sha256:") else repr(reference[:80])
