"""Image history of one repository on any Registry v2 / OCI distribution server.

The protocol has no push time and no "list every manifest" call, so history
is read the way a client sees it: every tag (paged with `Link`), the manifest
each tag names, and its time from the `org.opencontainers.image.created`
annotation, else the image config's `created` (the build time; Jetstream
builds and pushes in the same CI job). A multi-arch index takes its own
annotation, else the newest `created` among its platform manifests. The
platform manifests are listed with `index_child=True` (never candidates, but a
digest pin may still name one) and the index's time, unless a tag names them
directly. Untagged manifests are invisible to the tags API.

A digest's content never changes, so what was learnt about it (its time,
its children) is kept for the life of the process: a refresh costs one
tag listing and one manifest GET per tag, and fetches blobs only for new
digests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from webhook.config import OciSource
from webhook.core.pinning import Image
from webhook.sources import SourceError
from webhook.sources.answers import Malformed, digest, field_of, rfc3339, strings
from webhook.sources.dockerauth import AuthFileError, read_auth_file
from webhook.sources.registry import (
    CREATED_ANNOTATION,
    IMAGE_TYPES,
    Manifest,
    RegistryClient,
)

PARALLEL_FETCHES = 4


@dataclass(frozen=True)
class DigestFacts:
    """What a digest's (immutable) content says: its time and, for an index, its children."""

    created: datetime
    children: tuple[str, ...] = ()


def split_repository(repository: str) -> tuple[str, str]:
    """`registry.example.com:5000/team/app` -> (`registry.example.com:5000`, `team/app`)."""
    host, _, path = repository.partition("/")
    return host, path


class OciImages:
    def __init__(
        self,
        repository: str,
        source: OciSource,
        fetch_in_parallel: int = PARALLEL_FETCHES,
    ) -> None:
        host, path = split_repository(repository)
        name = source.name or path
        endpoint = source.endpoint or f"https://{host}"
        self.name = f"oci {host}/{name}"
        credentials: Callable[[], tuple[str, str] | None] | None = None
        if source.auth_file is not None:
            hosts = [host, urlsplit(endpoint).netloc]
            credentials = _file_credentials(self.name, source.auth_file, hosts)
        self.registry = RegistryClient(
            self.name,
            endpoint,
            name,
            source.timeout_seconds,
            credentials=credentials,
            credential_hosts=source.credential_hosts,
            ca_file=source.ca_file,
        )
        self.fetch_in_parallel = max(1, fetch_in_parallel)
        self._facts: dict[str, DigestFacts] = {}
        self._learning: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def images(self) -> Sequence[Image]:
        tags: list[str] = []
        for page in self.registry.tag_pages():
            tags += sorted(self.registry.checked(_tags, page))
        tags = list(dict.fromkeys(tags))
        with ThreadPoolExecutor(self.fetch_in_parallel, "oci-history") as pool:
            digests = list(pool.map(self._tagged, tags))
        tags_of: dict[str, set[str]] = {}
        for tag, tag_digest in zip(tags, digests, strict=True):
            tags_of.setdefault(tag_digest, set()).add(tag)
        images = [
            Image(d, self._known(d).created, frozenset(t), index_child=False)
            for d, t in tags_of.items()
        ]
        seen = set(tags_of)
        for index in list(tags_of):
            facts = self._known(index)
            for child in facts.children:
                if child not in seen:
                    seen.add(child)
                    images.append(Image(child, facts.created, frozenset(), index_child=True))
        return images

    def known_digests(self) -> int:
        """How many digests are memoised (for tests and measurements)."""
        with self._lock:
            return len(self._facts)

    def _known(self, manifest_digest: str) -> DigestFacts:
        with self._lock:
            return self._facts[manifest_digest]

    def _remember(self, manifest_digest: str, facts: DigestFacts) -> DigestFacts:
        with self._lock:
            self._facts[manifest_digest] = facts
        return facts

    def _tagged(self, tag: str) -> str:
        manifest = self.registry.manifest(quote(tag, safe=""))
        with self._lock:
            if manifest.digest in self._facts:
                return manifest.digest
            # Tags naming one digest are fetched in parallel: learn its facts once.
            learning = self._learning.setdefault(manifest.digest, threading.Lock())
        with learning:
            with self._lock:
                known = manifest.digest in self._facts
            if not known:
                self._remember(manifest.digest, self._facts_of(manifest, f"tag {tag!r}"))
        with self._lock:
            self._learning.pop(manifest.digest, None)
        return manifest.digest

    def _facts_of(self, manifest: Manifest, what: str) -> DigestFacts:
        where = f"{what} ({manifest.digest[:19]})"
        if manifest.is_index:
            children = self.registry.checked(manifest.children)
            newest = self._annotated(manifest, where) or self._newest_child(children, where)
            return DigestFacts(newest, tuple(children))
        if manifest.media_type not in IMAGE_TYPES:
            raise SourceError(
                self.name,
                f"{where}: unsupported manifest type {manifest.media_type[:100]!r} "
                f"from {self.registry.where}",
            )
        created = self._image_created(manifest, where)
        if created is None:
            raise SourceError(
                self.name,
                f"malformed answer from {self.registry.where}: {where}: neither the annotation "
                f"{CREATED_ANNOTATION} nor the image config's created time is set",
            )
        return DigestFacts(created)

    def _annotated(self, manifest: Manifest, where: str) -> datetime | None:
        value = manifest.annotation(CREATED_ANNOTATION)
        if value is None:
            return None
        annotation = f"{where}: annotations.{CREATED_ANNOTATION}"
        return self.registry.checked(rfc3339, value, annotation)

    def _image_created(self, manifest: Manifest, where: str) -> datetime | None:
        """The annotation, else the config's `created`; None when neither is set."""
        annotated = self._annotated(manifest, where)
        if annotated is not None:
            return annotated

        def config_digest() -> str:
            config = field_of(manifest.body, "config", where)
            if not isinstance(config, Mapping):
                raise Malformed(f"{where}: config", "expected an object")
            return digest(field_of(config, "digest", f"{where}: config"), f"{where}: config.digest")

        blob = self.registry.checked(config_digest)
        config = self.registry.blob_json(blob)
        if config.get("created") is None:
            return None
        return self.registry.checked(rfc3339, config["created"], f"{where}: config created")

    def _newest_child(self, children: Sequence[str], where: str) -> datetime:
        times: list[datetime] = []
        for child in children:
            with self._lock:
                facts = self._facts.get(child)
            if facts is None:
                manifest = self.registry.manifest(child)
                if manifest.media_type not in IMAGE_TYPES:
                    continue  # a nested index or an artifact: no platform image time
                created = self._image_created(manifest, f"{where} child {child[:19]}")
                if created is None:
                    continue  # e.g. an attestation manifest: not a platform image
                facts = self._remember(child, DigestFacts(created))
            times.append(facts.created)
        if not times:
            raise SourceError(
                self.name,
                f"malformed answer from {self.registry.where}: {where}: index without the "
                f"annotation {CREATED_ANNOTATION} and no platform manifest with a created time",
            )
        return max(times)


def _tags(page: Mapping[str, Any]) -> frozenset[str]:
    return strings(field_of(page, "tags", ""), "tags")


def _file_credentials(
    source: str, auth_file: Path, hosts: Sequence[str]
) -> Callable[[], tuple[str, str] | None]:
    def read() -> tuple[str, str]:
        try:
            return read_auth_file(auth_file, hosts)
        except AuthFileError as err:
            raise SourceError(source, str(err)) from None

    return read
