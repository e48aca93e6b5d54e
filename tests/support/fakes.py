"""Fakes at the source interfaces: they count calls and fail on request."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from harness.builders import JETSTREAM, commit, image, utc
from webhook.admission.admitter import Admitter
from webhook.admission.resolver import DEFAULT_DATASETS, ConfigRepo, ImageTarget, Resolver
from webhook.core.datasets import Dataset, DatasetPolicy
from webhook.core.pinning import Commit, Image, commit_at, enrollments_table
from webhook.sources import EnrolledExperiment, SourceError, WorkflowState
from webhook.sources.cached import CachedWorkflows
from webhook.sources.nowait import NeverWaits


class ManualClock:
    """A monotonic clock that moves only when the test moves it, so expiry is exact."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


IMG_2023_01 = image("img-2023-01", "2023-01-01T13:00:00Z", "v1")
IMG_2023_03 = image("img-2023-03", "2023-03-01T13:00:00Z", "v2")
IMG_2024_02 = image("img-2024-02", "2024-02-20T00:00:00Z", "v3")
IMG_2024_06 = image("img-2024-06", "2024-06-10T00:00:00Z", "v4", "latest")
HISTORY = (IMG_2023_01, IMG_2023_03, IMG_2024_02, IMG_2024_06)
IMG_2024_02_BREAKING = image("img-2024-02", "2024-02-20T00:00:00Z", "v3", "breaking")
HISTORY_WITH_BREAKING = (IMG_2023_01, IMG_2023_03, IMG_2024_02_BREAKING, IMG_2024_06)

SHA_2023_01 = commit("mh-2023-01", "2023-01-01T00:00:00Z")
SHA_2023_06 = commit("mh-2023-06", "2023-06-01T00:00:00Z")
SHA_2024_06 = commit("mh-2024-06", "2024-06-05T00:00:00Z")
COMMITS = (SHA_2023_01, SHA_2023_06, SHA_2024_06)

ENROLLED = {
    "my-experiment": utc("2023-02-01T00:00:00Z"),
    "late-experiment": utc("2024-03-01T00:00:00Z"),
    "before-breaking": utc("2023-12-01T00:00:00Z"),
    "firefox-desktop-private-browsing-redesign-rollout": utc("2023-02-01T00:00:00Z"),
    "android-onboarding-notification-permission-v2": utc("2023-04-01T00:00:00Z"),
}
NOW = utc("2026-11-28T00:00:00Z")


@dataclass
class Failing(NeverWaits):
    """Set `error` to make every call raise it. Fakes answer from memory: they never wait."""

    error: BaseException | None = None
    calls: int = 0

    def _call(self) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error


@dataclass
class FakeEnrollments(Failing):
    enrolled: dict[str, datetime | None] = field(default_factory=lambda: dict(ENROLLED))
    name: str = "fake enrollments"

    asked: list[tuple[str, Dataset, datetime | None]] = field(default_factory=list)

    def enrolled_at(
        self, slug: str, dataset: Dataset, fresh_since: datetime | None = None
    ) -> datetime | None:
        self._call()
        self.asked.append((slug, dataset, fresh_since))
        return self.enrolled.get(slug)


@dataclass
class FakeImages(Failing):
    history: Sequence[Image] = HISTORY
    name: str = "fake registry"

    def images(self) -> Sequence[Image]:
        self._call()
        return self.history


@dataclass
class FakeCommits(Failing):
    commits: Sequence[Commit] = COMMITS
    name: str = "fake metric-hub"

    def sha_at(self, when: datetime | None) -> str:
        self._call()
        return commit_at(self.commits, when).sha


@dataclass
class FakeOverrides(Failing):
    workflows: Mapping[tuple[str, str], str] = field(default_factory=dict)
    slugs: Mapping[str, str] = field(default_factory=dict)
    name: str = "fake overrides"

    def workflow_pin(self, namespace: str, workflow: str) -> str | None:
        self._call()
        return self.workflows.get((namespace, workflow))

    def slug_pin(self, slug: str, fresh_since: datetime | None = None) -> str | None:
        self._call()
        return self.slugs.get(slug)

    def pinned_slugs(self) -> Collection[str]:
        self._call()
        return tuple(self.slugs)


@dataclass
class FakeWorkflowStore(Failing):
    """Workflows by (namespace, name), with the first-writer-wins write of the real one.

    `race`: a decision some other replica records just before this one writes.
    """

    workflows: dict[tuple[str, str], WorkflowState] = field(default_factory=dict)
    writes: list[tuple[str, str]] = field(default_factory=list)
    race: str | None = None
    refuse: SourceError | None = None
    name: str = "fake workflows"

    def add(
        self, name: str, created: str, pin: str | None = None, namespace: str = "argo"
    ) -> WorkflowState:
        state = WorkflowState(namespace, name, f"uid-{name}", utc(created), pin, {})
        self.workflows[(namespace, name)] = state
        return state

    def workflow(self, namespace: str, name: str) -> WorkflowState | None:
        self._call()
        return self.workflows.get((namespace, name))

    def record_many(self, state: WorkflowState, values: Mapping[str, str]) -> dict[str, str]:
        return {key: self.record(state, key, value) for key, value in values.items()}

    def record(self, state: WorkflowState, key: str, value: str) -> str:
        self._call()
        if self.refuse is not None:
            raise self.refuse
        current = self.workflows[(state.namespace, state.name)]
        if self.race is not None and key not in current.records:
            current = replace(current, records={**current.records, key: self.race})
            self.workflows[(state.namespace, state.name)] = current
        if key in current.records:
            return current.records[key]
        records = {**current.records, key: value}
        self.workflows[(state.namespace, state.name)] = replace(current, records=records)
        self.writes.append((state.name, key))
        return value


@dataclass
class World:
    """Everything an Admitter talks to, reachable from the test."""

    enrollments: FakeEnrollments = field(default_factory=FakeEnrollments)
    images: FakeImages = field(default_factory=FakeImages)
    commits: FakeCommits = field(default_factory=FakeCommits)
    overrides: FakeOverrides = field(default_factory=FakeOverrides)
    extra_repos: Sequence[tuple[str, str, FakeCommits]] = ()
    workflows: FakeWorkflowStore | None = None
    datasets: DatasetPolicy = DEFAULT_DATASETS
    always_read_enrollment: bool = False
    _cached_workflows: CachedWorkflows | None = None

    def resolver(self) -> Resolver:
        repos = [ConfigRepo("metric-hub", "METRIC_HUB_SHA", self.commits)]
        repos += [ConfigRepo(name, env, history) for name, env, history in self.extra_repos]
        return Resolver(
            [ImageTarget(JETSTREAM, "breaking", self.images)],
            self.enrollments,
            repos,
            self.overrides,
            now=lambda: NOW,
            datasets=self.datasets,
            workflows=self.cached_workflows,
            always_read_enrollment=self.always_read_enrollment,
        )

    @property
    def cached_workflows(self) -> CachedWorkflows | None:
        """One cache over the fake store for the world (a webhook replica's memory)."""
        if self.workflows is None:
            return None
        if self._cached_workflows is None:
            self._cached_workflows = CachedWorkflows(
                self.workflows, 10.0, 1000, wall=lambda: NOW, background=False
            )
        return self._cached_workflows

    def admitter(self, **options: Any) -> Admitter:
        env = {"metric-hub": "METRIC_HUB_SHA"}
        env.update({name: var for name, var, _ in self.extra_repos})
        return Admitter(self.resolver(), env, **options)

    @property
    def lookups(self) -> int:
        return self.enrollments.calls + self.images.calls + self.commits.calls


def listed(slug: str, when: datetime | None, source: str = "static") -> EnrolledExperiment:
    """A listing's row for an experiment whose slug the source knows (the static file)."""
    return EnrolledExperiment(enrollments_table(slug), slug, when, source)


@dataclass
class FakeLister(Failing):
    """A listing of experiments; `pending` are known but not enrolled (like static nulls)."""

    rows: Sequence[EnrolledExperiment] = ()
    pending: Sequence[str] = ()
    name: str = "fake listing"
    by_dataset: Mapping[Dataset, Sequence[EnrolledExperiment] | SourceError] = field(
        default_factory=dict
    )  # a dataset's own rows, or its failure (others: `rows`)

    def list_enrolled(self, dataset: Dataset) -> Sequence[EnrolledExperiment]:
        self._call()
        own = self.by_dataset.get(dataset, self.rows)
        if isinstance(own, SourceError):
            raise own
        return own

    def list_not_enrolled(self) -> Sequence[str]:
        return self.pending
