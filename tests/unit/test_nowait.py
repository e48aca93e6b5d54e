"""Deciding without waiting: only when every source can refuse to wait, counted once."""

from __future__ import annotations

import pytest

from tests.builders import JETSTREAM
from tests.fakes import FakeCommits, FakeEnrollments, FakeImages, World
from webhook.admission.resolver import ConfigRepo, ImageTarget, Resolver
from webhook.config import CacheConfig
from webhook.sources.cache import TtlCache
from webhook.sources.cached import CachedConfigHistory, CachedEnrollments, CachedImageHistory
from webhook.sources.nowait import NeedsLookup, waiting_forbidden, without_waiting


def test_a_resolver_with_an_uncached_source_names_it_and_never_decides_without_waiting() -> None:
    resolver = World().resolver()  # plain fakes: any of them may wait on a backend
    assert not resolver.never_waits
    assert resolver.waiting_sources == [
        "fake registry",
        "fake enrollments",
        "fake metric-hub",
        "fake overrides",
    ]


def test_a_resolver_whose_sources_are_all_caches_may_decide_without_waiting() -> None:
    config = CacheConfig()
    resolver = Resolver(
        [ImageTarget(JETSTREAM, "breaking", CachedImageHistory(FakeImages(), config))],
        CachedEnrollments(FakeEnrollments(), config),
        [ConfigRepo("metric-hub", "METRIC_HUB_SHA", CachedConfigHistory(FakeCommits(), config))],
    )
    assert resolver.waiting_sources == []
    assert resolver.never_waits


def test_a_cached_source_beside_an_uncached_one_is_not_enough() -> None:
    config = CacheConfig()
    resolver = Resolver(
        [ImageTarget(JETSTREAM, "breaking", CachedImageHistory(FakeImages(), config))],
        FakeEnrollments(),
    )
    assert resolver.waiting_sources == ["fake enrollments"]
    assert not resolver.never_waits


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
