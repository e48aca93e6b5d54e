"""Cached faces of the sources, with the same interfaces as what they wrap.

- Image histories change a few times a month: one listing per repository,
  refreshed in the background, never waited on once warm.
- Enrollment times change only when jetstream's `rerun-skip` moves a label:
  cached per slug for long; "not enrolled" for a short time, because the
  table appears on the experiment's first analysis. With a lister (BigQuery
  tables.list) the whole dataset is prefetched, so a burst of never-seen
  slugs needs no per-slug call.
- A config repo's tip at a past time does not change: cached per time;
  the tip of today only briefly.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from webhook.config import CacheConfig
from webhook.core.datasets import Dataset
from webhook.core.pinning import Image, Refusal, enrollments_table
from webhook.core.times import utc_now
from webhook.core.workflow_record import ExperimentDecision, MalformedRecord, decode, encode
from webhook.sources import (
    ConfigHistory,
    DatasetMissing,
    EnrollmentClock,
    ExperimentLister,
    ImageHistory,
    OverrideReader,
    SlugPins,
    WorkflowState,
)
from webhook.sources.cache import Refreshing, TtlCache
from webhook.sources.nowait import NeedsLookup, NeverWaits, waiting_forbidden
from webhook.sources.recording import BatchStore, RecordWriter

log = logging.getLogger(__name__)

# How long a Workflow's decisions are remembered (Jetstream's workflows end within days).
DECISION_MEMORY_SECONDS = 7 * 24 * 3600.0


class CachedImageHistory(NeverWaits):
    def __init__(self, inner: ImageHistory, config: CacheConfig) -> None:
        self.inner = inner
        self.name = inner.name
        self.history = Refreshing(
            inner.images,
            config.image_refresh_seconds,
            config.image_max_stale_seconds,
            name="image-history",
        )

    def images(self) -> Sequence[Image]:
        return self.history.get()

    def start(self) -> None:
        self.history.start()


@dataclass(frozen=True)
class Listed:
    """One dataset's listing: enrollment time per table, and the tables it could not read.

    An unreadable table (a bad label, no creation time) is no answer: its
    experiment is read on its own, which fails with that table's message,
    never "not enrolled" for a table that is there.
    """

    times: Mapping[str, datetime]
    unreadable: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Read:
    """An enrollment time and when the read that found it began (wall clock)."""

    when: datetime | None
    began: datetime


class CachedEnrollments(NeverWaits):
    """Enrollment times per (dataset, slug), and with a lister each dataset's whole listing.

    A caller may ask for a time read no earlier than some moment
    (`fresh_since`: an Argo Workflow's creation, so a `rerun` that moved the
    table's label just before submitting is seen). Older cached or listed
    answers are then not used; with a lister, one listing begun after that
    moment serves every experiment that asks, so a burst of a new Workflow's
    experiments costs one listing, not a call per experiment.
    """

    def __init__(
        self,
        inner: EnrollmentClock,
        config: CacheConfig,
        lister: ExperimentLister | None = None,
        datasets: Iterable[Dataset] = (),
        wall: Callable[[], datetime] = utc_now,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self._wall = wall
        self.times = TtlCache[tuple[Dataset, str], _Read](
            ttl=lambda read: (
                config.enrollment_ttl_seconds
                if read.when is not None
                else config.not_enrolled_ttl_seconds
            ),
            max_entries=config.max_entries,
            name="enrollments",
        )
        self.listings: dict[Dataset, Refreshing[Listed]] = {}
        if lister is not None:
            for dataset in sorted(set(datasets)):
                self.listings[dataset] = Refreshing(
                    functools.partial(self._by_table, lister, dataset),
                    config.enrollment_list_refresh_seconds,
                    config.image_max_stale_seconds,
                    name="enrollment-listing",
                    wall=wall,
                )

    @staticmethod
    def _by_table(lister: ExperimentLister, dataset: Dataset) -> Listed:
        rows = lister.list_enrolled(dataset)
        return Listed(
            {row.table: row.enrolled_at for row in rows if row.enrolled_at is not None},
            frozenset(row.table for row in rows if row.enrolled_at is None),
        )

    def enrolled_at(
        self, slug: str, dataset: Dataset, fresh_since: datetime | None = None
    ) -> datetime | None:
        table = enrollments_table(slug)
        listing = self.listings.get(dataset)
        if listing is not None and fresh_since is not None:
            # A listing begun after the moment is the truth at that moment: a table
            # missing from it had not been created (the experiment is not enrolled).
            fresh = listing.since(fresh_since)
            if table not in fresh.unreadable:
                return fresh.times.get(table)
        elif listing is not None:
            listed = listing.current()
            if listed is not None:
                when = listed.times.get(table)
                if when is not None:
                    return when
        usable = None
        if fresh_since is not None:
            wanted = min(fresh_since, self._wall())
            usable = lambda read: read.began >= wanted  # noqa: E731
        return self.times.get((dataset, slug), lambda: self._read(slug, dataset), usable).when

    def _read(self, slug: str, dataset: Dataset) -> _Read:
        began = self._wall()
        return _Read(self.inner.enrolled_at(slug, dataset), began)

    @property
    def cold_listings(self) -> list[str]:
        """The listings not loaded yet (readiness waits for them for a while)."""
        return [
            f"{self.name} listing of {d}"
            for d, listing in self.listings.items()
            if not listing.warm
        ]

    @property
    def missing_datasets(self) -> list[str]:
        """Datasets never listed because BigQuery says they (or their project) do not exist.

        Readiness waits for these without end: see `Wiring.readiness`.
        """
        return [
            listing.last_error.cause
            for listing in self.listings.values()
            if not listing.warm and isinstance(listing.last_error, DatasetMissing)
        ]

    def listing_ages(self) -> dict[str, float]:
        """Seconds since each dataset was listed (loaded ones only)."""
        return {
            f"{self.name} {dataset}": listing.age
            for dataset, listing in self.listings.items()
            if listing.warm
        }

    def start(self) -> None:
        for listing in self.listings.values():
            listing.start()


class CachedConfigHistory(NeverWaits):
    def __init__(self, inner: ConfigHistory, config: CacheConfig) -> None:
        self.inner = inner
        self.name = inner.name
        tip_ttl = config.config_tip_ttl_seconds
        past_ttl = config.config_ttl_seconds
        self.shas = TtlCache[datetime | None, str](
            ttl=lambda _: past_ttl, max_entries=config.max_entries, name="config-history"
        )
        self.tip = TtlCache[datetime | None, str](
            ttl=lambda _: tip_ttl, max_entries=1, name="config-tip"
        )

    def sha_at(self, when: datetime | None) -> str:
        cache = self.tip if when is None else self.shas
        return cache.get(when, lambda: self.inner.sha_at(when))


class WorkflowStore(BatchStore, Protocol):
    """The Kubernetes side of `CachedWorkflows` (webhook.kube.workflows.KubeWorkflows)."""

    name: str

    def workflow(self, namespace: str, name: str) -> WorkflowState | None: ...


class RecordUnreadable(Refusal):
    """A decision annotation on a Workflow that this webhook cannot read (edited by hand)."""

    code = 422
    reason = "Invalid"


class CachedWorkflows(NeverWaits):
    """Workflow decisions with as few API calls as a burst allows.

    A recorded decision never changes (first writer wins), so every decision
    read or recorded is remembered by (Workflow uid, key) for as long as the
    Workflow can live: a later pod of that experiment needs no API call. The
    Workflow itself is cached briefly, which is safe: a decision missing from
    a stale copy is decided again, and its write fails in favour of the one
    recorded (the write tests that the annotation is absent). Writes happen in
    the background (webhook.sources.recording); `background` False writes in
    the caller's thread and returns the decision that stands.
    """

    def __init__(
        self,
        inner: WorkflowStore,
        cache_seconds: float,
        max_entries: int,
        wall: Callable[[], datetime] = utc_now,
        background: bool = True,
        linger: float = 0.0,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self._wall = wall
        self.writer = RecordWriter(inner, self._settled, background, linger)
        self.states = TtlCache[tuple[str, str], WorkflowState | None](
            lambda _: cache_seconds, 4096, name="workflows"
        )
        self.decisions = TtlCache[tuple[str, str], ExperimentDecision](
            lambda _: DECISION_MEMORY_SECONDS, max_entries, name="workflow-decisions"
        )

    def remembered(self, uid: str, key: str) -> ExperimentDecision | None:
        return self.decisions.peek((uid, key))

    def workflow(self, namespace: str, name: str) -> WorkflowState | None:
        return self.states.get((namespace, name), lambda: self.inner.workflow(namespace, name))

    def recorded(self, state: WorkflowState, key: str) -> ExperimentDecision | None:
        known = self.decisions.peek((state.uid, key))
        if known is not None:
            return known
        raw = state.records.get(key)
        if raw is None:
            return None
        decision = self._decode(state, key, raw)
        self.decisions.put((state.uid, key), decision)
        return decision

    def record(
        self, state: WorkflowState, key: str, decision: ExperimentDecision, pod: str
    ) -> ExperimentDecision:
        if not self.writer.background and waiting_forbidden():
            raise NeedsLookup(self.name)  # a write is never made on the event loop
        self.decisions.put((state.uid, key), decision)
        value = encode(decision, pod, self._wall())
        stood = self.writer.submit(state, key, value)
        if stood is None or stood == value:
            return decision
        winner = self._decode(state, key, stood)
        self.decisions.put((state.uid, key), winner)
        return winner

    def _settled(self, state: WorkflowState, key: str, ours: str, standing: str) -> None:
        """A write landed, or found another replica's decision standing in its place."""
        if standing == ours:
            return
        try:
            winner = decode(standing)
        except MalformedRecord:
            return  # refused, naming the annotation, when a pod next reads it
        self.decisions.put((state.uid, key), winner)
        log.warning(
            "decision conflict on Workflow %s/%s for %s: another replica recorded first; "
            "later pods run its decision",
            state.namespace, state.name, winner.slug,
            extra={"fields": {"key": key, "ours": ours, "recorded": standing}},
        )  # fmt: skip

    @staticmethod
    def _decode(state: WorkflowState, key: str, raw: str) -> ExperimentDecision:
        try:
            return decode(raw)
        except MalformedRecord as err:
            raise RecordUnreadable(
                f"annotation {key} of Workflow {state.namespace}/{state.name} is not a "
                f"decision jetstream-pin can read ({err}); remove it to decide again"
            ) from None


class CachedOverrides(NeverWaits):
    """An override store's answers for `cache_seconds`: Workflow labels, and the slug entries.

    The slug entries are read all at once (one ConfigMap read serves every
    experiment). A new Workflow's first decision asks for them as they stood
    when the Workflow was created (`fresh_since`), so an override added just
    before `argo submit` is never missed for the cache's sake.
    """

    def __init__(
        self,
        reader: OverrideReader,
        cache_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utc_now,
    ) -> None:
        self.reader = reader
        self.name = reader.name
        self._workflows = TtlCache[tuple[str, str], str | None](
            lambda _: cache_seconds, 4096, clock, name="kubernetes workflows"
        )
        self._slugs = TtlCache[str, SlugPins](
            lambda _: cache_seconds, 1, clock, name="overrides configmap"
        )
        self._wall = wall

    def workflow_pin(self, namespace: str, workflow: str) -> str | None:
        return self._workflows.get(
            (namespace, workflow), lambda: self.reader.workflow_pin(namespace, workflow)
        )

    def slug_pin(self, slug: str, fresh_since: datetime | None = None) -> str | None:
        """The entry for `slug`; with `fresh_since`, as read no earlier than that moment."""
        usable = None
        if fresh_since is not None:
            wanted = min(fresh_since, self._wall())
            usable = lambda entries: entries.read_at >= wanted  # noqa: E731
        return self._slugs.get("entries", self.reader.slug_pins, usable).pins.get(slug)

    def pinned_slugs(self) -> Collection[str]:
        """Every slug with an entry (the report matches tables to them)."""
        return tuple(self._slugs.get("entries", self.reader.slug_pins).pins)
