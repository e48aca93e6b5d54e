"""Deciding without waiting: the resolver takes only sources that can refuse to wait."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pytest

from harness.builders import JETSTREAM
from tests.support.fakes import FakeCommits, FakeEnrollments, FakeImages
from webhook.admission.resolver import ConfigRepo, ImageTarget, Resolver
from webhook.config import CacheConfig
from webhook.core.pinning import Image
from webhook.sources.cache import TtlCache
from webhook.sources.cached import CachedConfigHistory, CachedEnrollments, CachedImageHistory
from webhook.sources.nowait import NeedsLookup, waiting_forbidden, without_waiting


class RemoteImages:
    """A source that asks a backend on every call, with no cache in front."""

    name = "remote registry"

    def images(self) -> Sequence[Image]:
        raise AssertionError("never asked: the resolver refuses it first")


def test_a_source_that_may_wait_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"remote registry \(RemoteImages\) may wait"):
        Resolver([ImageTarget(JETSTREAM, "breaking", RemoteImages())], FakeEnrollments())


def test_a_real_source_is_taken_behind_its_cache() -> None:
    config = CacheConfig()
    behind = CachedImageHistory(RemoteImages(), config)
    resolver = Resolver(
        [ImageTarget(JETSTREAM, "breaking", behind)],
        CachedEnrollments(FakeEnrollments(), config),
        [ConfigRepo("metric-hub", "METRIC_HUB_SHA", CachedConfigHistory(FakeCommits(), config))],
    )
    assert resolver.images[JETSTREAM].history is behind


class RemoteCommits:
    name = "remote metric-hub"

    def sha_at(self, when: datetime | None) -> str:
        raise AssertionError("never asked: the resolver refuses it first")


def test_every_kind_of_source_is_checked() -> None:
    repos = [ConfigRepo("metric-hub", "METRIC_HUB_SHA", RemoteCommits())]
    with pytest.raises(TypeError, match="remote metric-hub"):
        Resolver([ImageTarget(JETSTREAM, "breaking", FakeImages())], FakeEnrollments(), repos)


def test_a_miss_without_waiting_raises_and_counts_no_hit() -> None:
    cache = TtlCache[str, int](ttl=lambda _: 60, max_entries=10, name="")
    cache.put("warm", 1)

    def both() -> int:
        return cache.get("warm", lambda: 0) + cache.get("cold", lambda: 2)

    assert not waiting_forbidden()
    with pytest.raises(NeedsLookup):
        without_waiting(both)
    assert (cache.stats.hits, cache.stats.misses) == (0, 0)
    assert without_waiting(lambda: cache.get("warm", lambda: 0)) == 1
    assert cache.stats.hits == 1


def test_nested_tries_count_their_hits_once_when_the_outer_one_succeeds() -> None:
    cache = TtlCache[str, int](ttl=lambda _: 60, max_entries=10, name="")
    cache.put("k", 1)

    def inner() -> int:
        assert waiting_forbidden()
        return cache.get("k", lambda: 0)

    assert without_waiting(lambda: without_waiting(inner) + without_waiting(inner)) == 2
    assert cache.stats.hits == 2
