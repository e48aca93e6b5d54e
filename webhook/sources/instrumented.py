"""Sources that count and time their backend calls (placed below the caches)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from webhook import metrics
from webhook.core.datasets import Dataset
from webhook.core.pinning import Image
from webhook.sources import ConfigHistory, EnrolledExperiment, EnrollmentClock, ImageHistory

T = TypeVar("T")


def observed(source: str, call: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = "error"
    try:
        value = call()
        result = "ok"
        return value
    finally:
        metrics.BACKEND_CALLS.labels(source, result).inc()
        metrics.BACKEND_SECONDS.labels(source).observe(time.perf_counter() - started)


class InstrumentedEnrollments:
    def __init__(self, inner: EnrollmentClock) -> None:
        self.inner = inner
        self.name = inner.name

    def enrolled_at(
        self, slug: str, dataset: Dataset, fresh_since: datetime | None = None
    ) -> datetime | None:
        return observed(self.name, lambda: self.inner.enrolled_at(slug, dataset, fresh_since))

    def list_enrolled(self, dataset: Dataset) -> Sequence[EnrolledExperiment]:
        lister = getattr(self.inner, "list_enrolled", None)
        if lister is None:
            raise TypeError(f"{self.name} cannot list experiments")
        listed: Sequence[EnrolledExperiment] = observed(
            f"{self.name} listing", lambda: lister(dataset)
        )
        return listed


class InstrumentedImages:
    def __init__(self, inner: ImageHistory) -> None:
        self.inner = inner
        self.name = inner.name

    def images(self) -> Sequence[Image]:
        return observed(self.name, self.inner.images)


class InstrumentedConfigHistory:
    def __init__(self, inner: ConfigHistory) -> None:
        self.inner = inner
        self.name = inner.name

    def sha_at(self, when: datetime | None) -> str:
        return observed(self.name, lambda: self.inner.sha_at(when))
