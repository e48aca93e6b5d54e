"""Image history from Artifact Registry's REST API (`dockerImages.list`).

One paged listing (`pageSize`, `pageToken` -> `nextPageToken`) returns every
manifest of every image in the repository with its `uploadTime` (RFC 3339
with nanoseconds) and tags; entries are kept when their name's image part
(URL-encoded when it holds '/') is exactly the configured image. The Google
access token goes as a Bearer header to the configured endpoint host only.

The listing does not say which manifests are platform children of a
multi-arch index. When an index is listed, its manifest is read once over the
repository's Registry v2 host (`dockerEndpoint`, by default
`https://<location>-docker.pkg.dev`, with the `oauth2accesstoken` token
exchange) and its children are marked `index_child=True` unless tagged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from webhook.config import ArtifactRegistrySource
from webhook.core.pinning import Image
from webhook.sources import SourceError
from webhook.sources.answers import (
    Malformed,
    digest,
    field_of,
    mapping,
    rfc3339,
    sequence,
    string,
    strings,
)
from webhook.sources.gcr import IndexChildren, Listed, google_registry_login, mark_children
from webhook.sources.google import GoogleCredentials
from webhook.sources.http import HttpClient, host_of
from webhook.sources.registry import RegistryClient

T = TypeVar("T")
PUBLIC_ENDPOINT = "https://artifactregistry.googleapis.com"
PAGE_SIZE = 1000  # the API's maximum
_MAX_PAGES = 1000


class ArtifactRegistryImages:
    def __init__(
        self, source: ArtifactRegistrySource, google: GoogleCredentials | None = None
    ) -> None:
        self.source = source
        self.name = f"artifactregistry {source.project}/{source.repository}/{source.image}"
        self.google = google or GoogleCredentials(
            self.name, source.credentials, source.timeout_seconds
        )
        self.http = HttpClient(
            self.name, source.endpoint or PUBLIC_ENDPOINT, source.timeout_seconds,
            auth=self.google.headers,
        )  # fmt: skip
        self.parent = "/".join(
            ["projects", source.project, "locations", source.location,
             "repositories", source.repository]
        )  # fmt: skip
        docker = RegistryClient(
            self.name,
            source.docker_endpoint or f"https://{source.location}-docker.pkg.dev",
            f"{source.project}/{source.repository}/{source.image}",
            source.timeout_seconds,
            credentials=google_registry_login(self.google),
        )
        self.children = IndexChildren(docker)

    def images(self) -> Sequence[Image]:
        listed: list[Listed] = []
        token: str | None = None
        seen: set[str] = set()
        path = f"v1/{quote(self.parent, safe='/')}/dockerImages"
        for _ in range(_MAX_PAGES):
            params = {"pageSize": PAGE_SIZE, **({"pageToken": token} if token else {})}
            page = self.http.get_json(path, params)
            listed += self._read(self._page, page)
            token = self._read(_next_token, page)
            if not token:
                return mark_children(listed, self.children)
            if token in seen:
                break
            seen.add(token)
        raise SourceError(self.name, f"paging from {host_of(self.http.base_url)} does not end")

    def _page(self, page: Any) -> list[Listed]:
        body = mapping(page, "response")
        items = sequence(body.get("dockerImages", []), "dockerImages")
        listed = []
        for index, item in enumerate(items):
            entry = self._entry(mapping(item, f"dockerImages[{index}]"), f"dockerImages[{index}]")
            if entry is not None:
                listed.append(entry)
        return listed

    def _entry(self, item: Mapping[str, Any], where: str) -> Listed | None:
        name = string(field_of(item, "name", where), f"{where}.name")
        _parent, marker, image_at_digest = name.rpartition("/dockerImages/")
        image, at, image_digest = image_at_digest.rpartition("@")
        if not marker or not at:
            raise Malformed(f"{where}.name", "expected '.../dockerImages/<image>@sha256:<hex>'")
        if unquote(image) != self.source.image:
            return None
        return Listed(
            digest(image_digest, f"{where}.name digest"),
            rfc3339(field_of(item, "uploadTime", where), f"{where}.uploadTime"),
            strings(item.get("tags"), f"{where}.tags"),
            item.get("mediaType") if isinstance(item.get("mediaType"), str) else None,
        )

    def _read(self, read: Callable[[Any], T], page: Any) -> T:
        try:
            return read(page)
        except Malformed as err:
            where = host_of(self.http.base_url)
            raise SourceError(self.name, f"malformed answer from {where}: {err}") from None


def _next_token(page: Any) -> str | None:
    token = mapping(page, "response").get("nextPageToken")
    if token is None or token == "":
        return None
    return string(token, "nextPageToken")
