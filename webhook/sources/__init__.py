"""The three questions the webhook asks the outside world, each behind a small interface.

Implementations live in the sibling modules (static file, BigQuery, registries,
GitHub, git). The resolver only ever sees these protocols, so unit tests hand
it fakes and production hands it cached network clients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from webhook.datasets import Dataset
from webhook.pinning import Image
from webhook.workflow_record import ExperimentDecision


class SourceError(Exception):
    """A lookup failed (timeout, refusal, malformed answer); safe to show to users."""

    def __init__(self, source: str, cause: str) -> None:
        super().__init__(f"{source}: {cause}")
        self.source = source
        self.cause = cause


class NotRecorded(SourceError):
    """A store refused to record a decision for a reason retrying cannot fix (its size)."""


class EnrollmentClock(Protocol):
    """When an experiment enrolled, per its table in `dataset`: None when not enrolled yet."""

    name: str

    def enrolled_at(
        self, slug: str, dataset: Dataset, fresh_since: datetime | None = None
    ) -> datetime | None:
        """`fresh_since`: no answer read before that moment (a source without a cache
        always reads now and may ignore it)."""
        ...


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

    def list_enrolled(self, dataset: Dataset) -> Sequence[EnrolledExperiment]: ...


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

    def slug_pin(self, slug: str, fresh_since: datetime | None = None) -> str | None:
        """`fresh_since`: the entry as read no earlier than that moment."""
        ...


class NoOverrides:
    """Used when no override store is configured."""

    name = "no overrides"

    def workflow_pin(self, namespace: str, workflow: str) -> str | None:
        return None

    def slug_pin(self, slug: str, fresh_since: datetime | None = None) -> str | None:
        return None


@dataclass(frozen=True)
class WorkflowState:
    """What the webhook needs of an Argo Workflow: identity, age, pin, recorded decisions."""

    namespace: str
    name: str
    uid: str
    created: datetime
    pin_label: str | None
    records: Mapping[str, str]  # annotation key -> value, the decision annotations only
    has_annotations: bool = True
    read_at: datetime | None = None  # when the read that found it began (wall clock)

    @property
    def fresh_since(self) -> datetime:
        """The moment a first decision's facts must be read after.

        `creationTimestamp` has whole seconds, so the Workflow was created
        before its end; and it existed when this replica began reading it.
        The earlier of the two serves every experiment of the Workflow with
        one listing begun after it.
        """
        end_of_second = self.created + timedelta(seconds=1)
        return end_of_second if self.read_at is None else min(end_of_second, self.read_at)


class WorkflowDecisions(Protocol):
    """Where each Workflow's decisions live: first writer wins, every replica reads them."""

    name: str

    def remembered(self, uid: str, key: str) -> ExperimentDecision | None:
        """A decision this process already read or recorded (never waits)."""
        ...

    def workflow(self, namespace: str, name: str) -> WorkflowState | None:
        """The Workflow (None: there is none of that name)."""
        ...

    def recorded(self, state: WorkflowState, key: str) -> ExperimentDecision | None:
        """The decision recorded under `key` in `state`, if any."""
        ...

    def record(
        self, state: WorkflowState, key: str, decision: ExperimentDecision, pod: str
    ) -> ExperimentDecision:
        """Record `decision` unless one is already there; the one that stands is returned."""
        ...
