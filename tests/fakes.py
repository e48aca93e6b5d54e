"""Fakes at the source interfaces: they count calls and fail on request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.builders import JETSTREAM, commit, image, utc
from webhook.admission import Admitter
from webhook.pinning import Commit, Image, commit_at
from webhook.resolver import ConfigRepo, ImageTarget, Resolver
from webhook.sources import EnrolledExperiment

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
class Failing:
    """Set `error` to make every call raise it."""

    error: BaseException | None = None
    calls: int = 0

    def _call(self) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error


@dataclass
class FakeEnrollments(Failing):
    enrolled: Mapping[str, datetime | None] = field(default_factory=lambda: dict(ENROLLED))
    name: str = "fake enrollments"

    def enrolled_at(self, slug: str) -> datetime | None:
        self._call()
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

    def slug_pin(self, slug: str) -> str | None:
        self._call()
        return self.slugs.get(slug)


@dataclass
class World:
    """Everything an Admitter talks to, reachable from the test."""

    enrollments: FakeEnrollments = field(default_factory=FakeEnrollments)
    images: FakeImages = field(default_factory=FakeImages)
    commits: FakeCommits = field(default_factory=FakeCommits)
    overrides: FakeOverrides = field(default_factory=FakeOverrides)
    extra_repos: Sequence[tuple[str, str, FakeCommits]] = ()

    def resolver(self) -> Resolver:
        repos = [ConfigRepo("metric-hub", "METRIC_HUB_SHA", self.commits)]
        repos += [ConfigRepo(name, env, history) for name, env, history in self.extra_repos]
        return Resolver(
            [ImageTarget(JETSTREAM, "breaking", self.images)],
            self.enrollments,
            repos,
            self.overrides,
            now=lambda: NOW,
        )

    def admitter(self, **options: Any) -> Admitter:
        env = {"metric-hub": "METRIC_HUB_SHA"}
        env.update({name: var for name, var, _ in self.extra_repos})
        return Admitter(self.resolver(), env, **options)

    @property
    def lookups(self) -> int:
        return self.enrollments.calls + self.images.calls + self.commits.calls


@dataclass
class FakeLister(Failing):
    """A listing of experiments; `pending` are known but not enrolled (like static nulls)."""

    rows: Sequence[EnrolledExperiment] = ()
    pending: Sequence[str] = ()
    name: str = "fake listing"

    def list_enrolled(self) -> Sequence[EnrolledExperiment]:
        self._call()
        return self.rows

    def list_not_enrolled(self) -> Sequence[str]:
        return self.pending
