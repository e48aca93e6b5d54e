"""The overrides' cache: Workflow labels and slug entries for a while, fresh when asked to be."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from harness.builders import utc
from tests.support.fakes import ManualClock
from webhook.sources import SlugPins
from webhook.sources.cached import CachedOverrides
from webhook.sources.nowait import NeedsLookup, without_waiting

READ_AT = utc("2026-01-01T00:00:00Z")


@dataclass
class Reader:
    """An override store that counts its reads."""

    pins: dict[str, str] = field(default_factory=lambda: {"my-experiment": "latest"})
    labels: dict[tuple[str, str], str] = field(default_factory=dict)
    read_at: datetime = READ_AT
    reads: list[str] = field(default_factory=list)
    name: str = "reader"

    def workflow_pin(self, namespace: str, workflow: str) -> str | None:
        self.reads.append(f"workflow {namespace}/{workflow}")
        return self.labels.get((namespace, workflow))

    def slug_pins(self) -> SlugPins:
        self.reads.append("slugs")
        return SlugPins(dict(self.pins), self.read_at)


def test_one_read_of_the_entries_serves_every_slug_until_it_expires() -> None:
    reader, clock = Reader(), ManualClock(0.0)
    cached = CachedOverrides(reader, 10.0, clock, wall=lambda: READ_AT)
    assert cached.slug_pin("my-experiment") == "latest"
    assert cached.slug_pin("other") is None
    assert tuple(cached.pinned_slugs()) == ("my-experiment",)
    assert reader.reads == ["slugs"]
    reader.pins = {}
    clock.now = 10.5
    assert cached.slug_pin("my-experiment") is None
    assert reader.reads == ["slugs", "slugs"]


def test_workflow_labels_are_cached_per_workflow_absent_ones_too() -> None:
    reader = Reader(labels={("argo", "wf"): "latest"})
    cached = CachedOverrides(reader, 10.0, ManualClock(0.0))
    assert cached.workflow_pin("argo", "wf") == "latest"
    assert cached.workflow_pin("argo", "wf") == "latest"
    assert cached.workflow_pin("argo", "other") is None
    assert cached.workflow_pin("argo", "other") is None
    assert reader.reads == ["workflow argo/wf", "workflow argo/other"]


def test_entries_read_before_a_workflow_was_created_are_read_again() -> None:
    reader = Reader()
    cached = CachedOverrides(
        reader, 10.0, ManualClock(0.0), wall=lambda: READ_AT + timedelta(hours=1)
    )
    assert cached.slug_pin("my-experiment") == "latest"  # read at READ_AT
    reader.pins, reader.read_at = {"my-experiment": "4bba4eebe859"}, READ_AT + timedelta(hours=1)
    created_later = READ_AT + timedelta(minutes=5)
    assert cached.slug_pin("my-experiment", fresh_since=created_later) == "4bba4eebe859"
    assert reader.reads == ["slugs", "slugs"]


def test_a_miss_where_waiting_is_forbidden_raises_instead_of_reading() -> None:
    reader = Reader()
    cached = CachedOverrides(reader, 10.0, ManualClock(0.0))
    with pytest.raises(NeedsLookup):
        without_waiting(lambda: cached.slug_pin("my-experiment"))
    assert reader.reads == []
    assert cached.slug_pin("my-experiment") == "latest"
    assert without_waiting(lambda: cached.slug_pin("my-experiment")) == "latest"
