"""The static data file: enrollments, image history and commits in one YAML file.

It is the embedded default (no cloud account needed) and the air-gapped
option. Every entry is checked at load time and errors name the entry, so a
typo shows up when the webhook starts, not when a pod arrives.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import yaml

from webhook.core.datasets import Dataset
from webhook.core.pinning import (
    Commit,
    EmptyHistory,
    Image,
    commit_at,
    enrollments_table,
    is_commit_sha,
    is_digest,
)
from webhook.core.times import NotATime, parse_rfc3339
from webhook.sources import EnrolledExperiment, SourceError
from webhook.sources.nowait import NeverWaits

_TOP_LEVEL = ("enrollments", "images", "commits", "overrides")


class StaticDataError(ValueError):
    pass


@dataclass(frozen=True)
class StaticData:
    enrollments: Mapping[str, datetime | None]
    images: Mapping[str, tuple[Image, ...]]
    commits: Mapping[str, tuple[Commit, ...]]
    overrides: Mapping[str, str]

    @classmethod
    def load(cls, path: Path) -> StaticData:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise StaticDataError(f"static data {path}: cannot read: {err.strerror}") from err
        except yaml.YAMLError as err:
            raise StaticDataError(f"static data {path}: not valid YAML: {err}") from err
        try:
            return cls.parse(raw)
        except StaticDataError as err:
            raise StaticDataError(f"static data {path}: {err}") from None

    @classmethod
    def parse(cls, raw: Any) -> StaticData:
        if not isinstance(raw, Mapping):
            raise StaticDataError("must be a mapping with enrollments, images and commits")
        for name in raw:
            if name not in _TOP_LEVEL:
                raise StaticDataError(f"{name}: unknown key (known: {', '.join(_TOP_LEVEL)})")
        return cls(
            enrollments=_enrollments(raw.get("enrollments") or {}),
            images={
                repo: _images(entries, f"images[{repo!r}]")
                for repo, entries in _mapping(raw.get("images") or {}, "images").items()
            },
            commits={
                name: _commits(entries, f"commits[{name!r}]")
                for name, entries in _mapping(raw.get("commits") or {}, "commits").items()
            },
            overrides=_overrides(raw.get("overrides") or {}),
        )


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise StaticDataError(f"{path}: must be a mapping with string keys")
    return value


def _list(value: Any, path: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise StaticDataError(f"{path}: must be a list")
    return value


def parse_time(value: Any, path: str) -> datetime:
    """RFC 3339 with a zone; YAML may already have turned it into a datetime."""
    if isinstance(value, str):
        try:
            return parse_rfc3339(value)
        except NotATime as err:
            raise StaticDataError(f"{path}: {value!r} {err}") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise StaticDataError(f"{path}: {value} has no time zone; add Z or an offset")
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    raise StaticDataError(f"{path}: must be an RFC 3339 time, got {type(value).__name__}")


def _enrollments(raw: Any) -> dict[str, datetime | None]:
    result: dict[str, datetime | None] = {}
    for slug, value in _mapping(raw, "enrollments").items():
        where = f"enrollments[{slug!r}]"
        result[slug] = None if value is None else parse_time(value, where)
    return result


def _entry(raw: Any, path: str, allowed: set[str]) -> Mapping[str, Any]:
    entry = _mapping(raw, path)
    unknown = set(entry) - allowed
    if unknown:
        raise StaticDataError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    return entry


def _images(raw: Any, path: str) -> tuple[Image, ...]:
    images: list[Image] = []
    seen: set[str] = set()
    for index, item in enumerate(_list(raw, path)):
        where = f"{path}[{index}]"
        entry = _entry(item, where, {"digest", "uploaded", "tags", "indexChild"})
        digest = entry.get("digest")
        if not isinstance(digest, str) or not is_digest(digest):
            raise StaticDataError(f"{where}.digest: must be 'sha256:<64 lowercase hex>'")
        if digest in seen:
            raise StaticDataError(f"{where}.digest: {digest} is listed twice")
        seen.add(digest)
        if "uploaded" not in entry:
            raise StaticDataError(f"{where}.uploaded: required")
        tags = entry.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise StaticDataError(f"{where}.tags: must be a list of strings")
        child = entry.get("indexChild", False)
        if not isinstance(child, bool):
            raise StaticDataError(f"{where}.indexChild: must be true or false")
        uploaded = parse_time(entry["uploaded"], f"{where}.uploaded")
        images.append(Image(digest, uploaded, frozenset(tags), child))
    return tuple(images)


def _commits(raw: Any, path: str) -> tuple[Commit, ...]:
    commits: list[Commit] = []
    for index, item in enumerate(_list(raw, path)):
        where = f"{path}[{index}]"
        entry = _entry(item, where, {"sha", "committed"})
        sha = entry.get("sha")
        if not isinstance(sha, str) or not is_commit_sha(sha):
            raise StaticDataError(f"{where}.sha: must be 40 (or 64) lowercase hex characters")
        if "committed" not in entry:
            raise StaticDataError(f"{where}.committed: required")
        commits.append(Commit(sha, parse_time(entry["committed"], f"{where}.committed")))
    return tuple(commits)


def _overrides(raw: Any) -> dict[str, str]:
    result = dict(_mapping(raw, "overrides"))
    for slug, value in result.items():
        if not isinstance(value, str):
            raise StaticDataError(f"overrides[{slug!r}]: must be a string pin value")
    return result


class StaticEnrollments:
    name = "static enrollments"

    def __init__(self, data: StaticData) -> None:
        self._data = data

    def enrolled_at(
        self, slug: str, dataset: Dataset, fresh_since: datetime | None = None
    ) -> datetime | None:
        """The same answer for every dataset: the data file holds one set of enrollments."""
        return self._data.enrollments.get(slug)

    def list_enrolled(self, dataset: Dataset) -> list[EnrolledExperiment]:
        return [
            EnrolledExperiment(enrollments_table(slug), slug, when, "static")
            for slug, when in sorted(self._data.enrollments.items())
            if when is not None
        ]

    def list_not_enrolled(self) -> list[str]:
        return sorted(slug for slug, when in self._data.enrollments.items() if when is None)


class StaticImages:
    def __init__(self, data: StaticData, repository: str) -> None:
        if repository not in data.images:
            raise StaticDataError(f"static data has no images for repository {repository}")
        self._images = data.images[repository]
        self.name = f"static images of {repository}"

    def images(self) -> Sequence[Image]:
        return self._images


class StaticConfigHistory:
    def __init__(self, data: StaticData, repo: str) -> None:
        if repo not in data.commits:
            raise StaticDataError(f"static data has no commits for config repo {repo}")
        self._commits = data.commits[repo]
        self.name = f"static commits of {repo}"

    def sha_at(self, when: datetime | None) -> str:
        try:
            return commit_at(self._commits, when).sha
        except EmptyHistory as err:
            raise SourceError(self.name, str(err)) from None


class StaticOverrides(NeverWaits):
    """Slug pins from the data file's `overrides:` map (the ConfigMap's offline twin)."""

    name = "static overrides"

    def __init__(self, data: StaticData) -> None:
        self._data = data

    def workflow_pin(self, namespace: str, workflow: str) -> str | None:
        return None

    def slug_pin(self, slug: str, fresh_since: datetime | None = None) -> str | None:
        return self._data.overrides.get(slug)

    def pinned_slugs(self) -> Collection[str]:
        return tuple(self._data.overrides)
