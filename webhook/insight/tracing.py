"""Recording what each source answered, for `jetstream-pin explain`.

An operator asking "why did this experiment get that image" wants the
answers behind the decision: what BigQuery said, how many images the
registry listed, which commit the config repo named, how long each took,
and which one failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from webhook.admission.resolver import ConfigRepo, ImageTarget, Resolver
from webhook.core.datasets import Dataset
from webhook.core.pinning import Image
from webhook.core.times import format_rfc3339
from webhook.sources import ConfigHistory, EnrollmentClock, ImageHistory, OverrideSource
from webhook.sources.nowait import NeverWaits

T = TypeVar("T")


@dataclass
class TracedCall:
    """One question a source was asked, what it answered, and how long it took."""

    source: str
    question: str
    answer: str
    milliseconds: float


@dataclass
class Trace:
    answers: list[TracedCall] = field(default_factory=list)

    def record(
        self, source: str, question: str, call: Callable[[], T], describe: Callable[[T], str]
    ) -> T:
        started = time.perf_counter()
        try:
            result = call()
        except Exception as err:
            self.answers.append(TracedCall(source, question, f"FAILED: {err}", _since(started)))
            raise
        self.answers.append(TracedCall(source, question, describe(result), _since(started)))
        return result


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _time_or_none(when: datetime | None) -> str:
    return format_rfc3339(when) if when else "no table: not enrolled"


def _pin(value: str | None) -> str:
    return value or "none"


def _history(images: Sequence[Image]) -> str:
    if not images:
        return "no images"
    newest = max(images, key=lambda i: i.uploaded)
    return f"{len(images)} images, newest uploaded {format_rfc3339(newest.uploaded)}"


class _Enrollments(NeverWaits):  # wraps a source the resolver already holds as one
    def __init__(self, inner: EnrollmentClock, trace: Trace) -> None:
        self.inner, self.trace, self.name = inner, trace, inner.name

    def enrolled_at(
        self, slug: str, dataset: Dataset, fresh_since: datetime | None = None
    ) -> datetime | None:
        return self.trace.record(
            self.name, f"enrollment time of {slug} in {dataset}",
            lambda: self.inner.enrolled_at(slug, dataset, fresh_since), _time_or_none,
        )  # fmt: skip


class _Images(NeverWaits):  # wraps a source the resolver already holds as one
    def __init__(self, inner: ImageHistory, trace: Trace) -> None:
        self.inner, self.trace, self.name = inner, trace, inner.name

    def images(self) -> Sequence[Image]:
        return self.trace.record(self.name, "image history", self.inner.images, _history)


class _Config(NeverWaits):  # wraps a source the resolver already holds as one
    def __init__(self, inner: ConfigHistory, trace: Trace) -> None:
        self.inner, self.trace, self.name = inner, trace, inner.name

    def sha_at(self, when: datetime | None) -> str:
        question = f"tip at {format_rfc3339(when)}" if when else "tip now"
        return self.trace.record(self.name, question, lambda: self.inner.sha_at(when), str)


class _Overrides(NeverWaits):  # wraps a source the resolver already holds as one
    def __init__(self, inner: OverrideSource, trace: Trace) -> None:
        self.inner, self.trace, self.name = inner, trace, inner.name

    def workflow_pin(self, namespace: str, workflow: str) -> str | None:
        return self.trace.record(
            self.name, f"pin of Workflow {namespace}/{workflow}",
            lambda: self.inner.workflow_pin(namespace, workflow), _pin,
        )  # fmt: skip

    def slug_pin(self, slug: str, fresh_since: datetime | None = None) -> str | None:
        return self.trace.record(
            self.name, f"override entry for {slug}",
            lambda: self.inner.slug_pin(slug, fresh_since), _pin,
        )  # fmt: skip


def traced(resolver: Resolver) -> tuple[Resolver, Trace]:
    """The same resolver, with every source call recorded in the returned trace."""
    trace = Trace()
    images = [
        ImageTarget(t.repository, t.breaking_tag, _Images(t.history, trace))
        for t in resolver.images.values()
    ]
    repos = [ConfigRepo(r.name, r.env, _Config(r.history, trace)) for r in resolver.config_repos]
    copy = Resolver(
        images,
        _Enrollments(resolver.enrollments, trace),
        repos,
        _Overrides(resolver.overrides, trace),
        resolver.now,
        resolver.datasets,
    )
    return copy, trace
