"""The three questions the webhook asks the outside world, each behind a small interface.

Implementations live in the sibling modules (static file, BigQuery, registries,
GitHub, git, and the Kubernetes API in webhook.kube). The resolver only ever
sees these protocols, and only sources that never wait (webhook.sources.nowait):
production hands it the caches of webhook.sources.cached over the network
clients, unit tests hand it fakes that answer from memory.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from webhook.core.datasets import Dataset
from webhook.core.pinning import Image
from webhook.core.workflow_record import ExperimentDecision
from webhook.sources.nowait import NeverWaits


class SourceError(Exception):
    """A lookup failed (timeout, refusal, malformed answer); safe to show to users."""

    def __init__(self, source: str, cause: str) -> None:
        super().__init__(f"{source}: {cause}")
        self.source = source
        self.cause = cause


class DatasetMissing(SourceError):
    """The enrollments dataset (or its project) does not exist.

    Never "not enrolled": a typo or a deleted dataset would otherwise move every
    experiment to the newest tooling. A lookup failure, and while a dataset has
    never been listed, a reason to stay unready.
    """

    def __init__(self, source: str, dataset: Dataset, cause: str) -> None:
        super().__init__(source, cause)
        self.dataset = dataset


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
    """One enrollments table of `list_enrolled`: when it enrolled, and its slug when known.

    `slug` is the real slug when the source knows it (`slug_source` "static":
    the data file); None when only the table is known ("table-name": BigQuery's
    tables.list returns names, not descriptions; see webhook.core.slugs).
    `error`: this table could not be read (a label that is not epoch seconds,
    no creation time); the rest of the listing stands without it.
    """

    table: str
    slug: str | None
    enrolled_at: datetime | None
    slug_source: str
    error: str = ""


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


@runtime_checkable
class TableDescriber(Protocol):
    """Optional extra of a lister: a table's description (BigQuery: one tables.get).

    Jetstream writes the experiment's slug there; the listing does not carry it.
    """

    def table_description(self, dataset: Dataset, table: str) -> str | None: ...


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


@dataclass(frozen=True)
class SlugPins:
    """Every slug entry of an override store, and when the read that found them began."""

    pins: Mapping[str, str]
    read_at: datetime


class OverrideReader(Protocol):
    """An override store read as it stands, every call (sources.cached.CachedOverrides caches it).

    One read gives every slug entry, so a burst of experiments costs one call.
    """

    name: str

    def workflow_pin(self, namespace: str, workflow: str) -> str | None: ...

    def slug_pins(self) -> SlugPins: ...


@runtime_checkable
class OverrideLister(Protocol):
    """Optional extra of an override source: every slug that has an entry.

    The report matches enrollments tables known only by name to these slugs.
    """

    def pinned_slugs(self) -> Collection[str]: ...


class NoOverrides(NeverWaits):
    """Used when no override store is configured."""

    name = "no overrides"

    def pinned_slugs(self) -> Collection[str]:
        return ()

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
    def as_of(self) -> datetime:
        """The moment a first decision is taken as of: the end of the creation's second.

        Jetstream decides when it submits; `creationTimestamp` has whole seconds,
        so an image pushed in that second before the submission counts. The same
        for every replica: it comes from the Workflow alone.
        """
        return self.created + timedelta(seconds=1)

    @property
    def fresh_since(self) -> datetime:
        """The moment a first decision's facts must be read after.

        `creationTimestamp` has whole seconds, so the Workflow was created
        before its end; and it existed when this replica began reading it.
        The earlier of the two serves every experiment of the Workflow with
        one listing begun after it.
        """
        return self.as_of if self.read_at is None else min(self.as_of, self.read_at)


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
