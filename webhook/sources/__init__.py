"""The three questions the webhook asks the outside world, each behind a small interface.

Implementations live in the sibling modules (static file, BigQuery, registries,
GitHub, git). The resolver only ever sees these protocols, so unit tests hand
it fakes and production hands it cached network clients.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from webhook.pinning import Image


class SourceError(Exception):
    """A lookup failed (timeout, refusal, malformed answer); safe to show to users."""

    def __init__(self, source: str, cause: str) -> None:
        super().__init__(f"{source}: {cause}")
        self.source = source
        self.cause = cause


class EnrollmentClock(Protocol):
    """When an experiment enrolled: None when it has not enrolled yet."""

    name: str

    def enrolled_at(self, slug: str) -> datetime | None: ...


@dataclass(frozen=True)
class EnrolledExperiment:
    """One row of `list_enrolled`: the slug, when it enrolled, and where the slug came from.

    `slug_source` says how trustworthy the slug is: "static" (the data file),
    "description" (the table's description names it) or "table-name" (recovered
    from the normalized table name, where '_' may have been '-' or '.').
    """

    slug: str
    enrolled_at: datetime
    slug_source: str


class ExperimentLister(Protocol):
    """Every enrolled experiment at once (the report and the BigQuery prefetch use it)."""

    name: str

    def list_enrolled(self) -> Sequence[EnrolledExperiment]: ...


@runtime_checkable
class PendingLister(Protocol):
    """Optional extra of a lister: experiments known but not enrolled yet.

    Only the static file knows them (BigQuery has no table before enrollment),
    so a lister may or may not offer it; the report checks with isinstance.
    """

    def list_not_enrolled(self) -> Sequence[str]: ...


class ImageHistory(Protocol):
    """Every image ever pushed to one repository, with upload times."""

    name: str

    def images(self) -> Sequence[Image]: ...


class ConfigHistory(Protocol):
    """The tip of a config repository's branch at a time (None: now)."""

    name: str

    def sha_at(self, when: datetime | None) -> str: ...


class OverrideSource(Protocol):
    """Operator pins kept outside the pod: Workflow labels and the overrides ConfigMap."""

    name: str

    def workflow_pin(self, namespace: str, workflow: str) -> str | None: ...

    def slug_pin(self, slug: str) -> str | None: ...


class NoOverrides:
    """Used when no override store is configured."""

    name = "no overrides"

    def workflow_pin(self, namespace: str, workflow: str) -> str | None:
        return None

    def slug_pin(self, slug: str) -> str | None:
        return None
