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

from collections.abc import Mapping, Sequence
from datetime import datetime

from webhook.cache import Refreshing, TtlCache
from webhook.config import CacheConfig
from webhook.pinning import Image, enrollments_table
from webhook.sources import ConfigHistory, EnrollmentClock, ExperimentLister, ImageHistory


class CachedImageHistory:
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


class CachedEnrollments:
    def __init__(
        self,
        inner: EnrollmentClock,
        config: CacheConfig,
        lister: ExperimentLister | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.times = TtlCache[str, datetime | None](
            ttl=lambda when: (
                config.enrollment_ttl_seconds
                if when is not None
                else config.not_enrolled_ttl_seconds
            ),
            max_entries=config.max_entries,
            name="enrollments",
        )
        self.listing: Refreshing[Mapping[str, datetime]] | None = None
        if lister is not None:
            self.listing = Refreshing(
                lambda: self._by_table(lister),
                config.enrollment_list_refresh_seconds,
                config.image_max_stale_seconds,
                name="enrollment-listing",
            )

    @staticmethod
    def _by_table(lister: ExperimentLister) -> Mapping[str, datetime]:
        return {enrollments_table(e.slug): e.enrolled_at for e in lister.list_enrolled()}

    def enrolled_at(self, slug: str) -> datetime | None:
        if self.listing is not None:
            listed = self.listing.current()
            if listed is not None:
                when = listed.get(enrollments_table(slug))
                if when is not None:
                    return when
        return self.times.get(slug, lambda: self.inner.enrolled_at(slug))

    def start(self) -> None:
        if self.listing is not None:
            self.listing.start()


class CachedConfigHistory:
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
