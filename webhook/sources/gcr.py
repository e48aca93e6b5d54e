"""Image history from Google Container Registry (and gcr.io repositories of Artifact Registry).

GCR extends Registry v2 `tags/list` with a `manifest` map: every manifest of
the repository, tagged or not, with `timeUploadedMs` (sent as a string or an
integer) and its tags, in one listing. The Google access token is exchanged
for a registry token as the user `oauth2accesstoken`; with
`credentials: anonymous` the exchange is anonymous (public repositories).

The map does not say which manifests are platform children of a multi-arch
index, so each index's manifest is read (once: a digest never changes) and
its children are marked `index_child=True` unless a tag names them directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webhook.config import GcrSource
from webhook.core.pinning import Image
from webhook.sources.answers import Malformed, digest, epoch_millis, field_of, mapping, strings
from webhook.sources.google import GoogleCredentials
from webhook.sources.registry import INDEX_TYPES, RegistryClient

GOOGLE_REGISTRY_USER = "oauth2accesstoken"


def google_registry_login(google: GoogleCredentials) -> Callable[[], tuple[str, str] | None]:
    """Basic credentials for a Google registry's token exchange; None when anonymous."""

    def login() -> tuple[str, str] | None:
        token = google.token()
        return (GOOGLE_REGISTRY_USER, token) if token else None

    return login


class IndexChildren:
    """The platform manifests of each index digest, read once and remembered."""

    def __init__(self, registry: RegistryClient) -> None:
        self.registry = registry
        self._known: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def of(self, index_digest: str) -> tuple[str, ...]:
        with self._lock:
            known = self._known.get(index_digest)
        if known is not None:
            return known
        manifest = self.registry.manifest(index_digest)
        children = tuple(self.registry.checked(manifest.children))
        with self._lock:
            self._known[index_digest] = children
        return children


@dataclass(frozen=True)
class Listed:
    """One manifest of a registry listing, before index children are known."""

    digest: str
    uploaded: datetime
    tags: frozenset[str]
    media_type: str | None


def mark_children(listed: Sequence[Listed], children: IndexChildren) -> list[Image]:
    """The listing as Images; children of a listed index are marked unless tagged themselves."""
    child_digests: set[str] = set()
    for entry in listed:
        if entry.media_type in INDEX_TYPES:
            child_digests.update(children.of(entry.digest))
    return [
        Image(e.digest, e.uploaded, e.tags, index_child=e.digest in child_digests and not e.tags)
        for e in listed
    ]


class GcrImages:
    def __init__(
        self, repository: str, source: GcrSource, google: GoogleCredentials | None = None
    ) -> None:
        host, _, path = repository.partition("/")
        self.name = f"gcr {repository}"
        self.google = google or GoogleCredentials(
            self.name, source.credentials, source.timeout_seconds
        )
        self.registry = RegistryClient(
            self.name,
            source.endpoint or f"https://{host}",
            path,
            source.timeout_seconds,
            credentials=google_registry_login(self.google),
        )
        self.children = IndexChildren(self.registry)

    def images(self) -> Sequence[Image]:
        manifests: dict[str, Mapping[str, Any]] = {}
        for page in self.registry.tag_pages():
            manifests.update(self.registry.checked(_manifests, page))
        entries = [self.registry.checked(_entry, d, e) for d, e in manifests.items()]
        return mark_children(entries, self.children)


def _manifests(page: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    if "manifest" not in page:
        raise Malformed(
            "manifest", "missing (this registry does not speak Google's extension: use type oci)"
        )
    listing = mapping(page["manifest"], "manifest")
    return {
        digest(key, "manifest key"): mapping(value, f"manifest[{key[:19]}]")
        for key, value in listing.items()
    }


def _entry(key: str, entry: Mapping[str, Any]) -> Listed:
    where = f"manifest[{key[:19]}]"
    uploaded = epoch_millis(field_of(entry, "timeUploadedMs", where), f"{where}.timeUploadedMs")
    tags = strings(entry.get("tag"), f"{where}.tag")
    media_type = entry.get("mediaType")
    return Listed(key, uploaded, tags, media_type if isinstance(media_type, str) else None)
