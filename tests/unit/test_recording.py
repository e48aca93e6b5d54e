"""Decisions written onto Workflows in the background: batched, conflicts adopted, bounded."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from harness.builders import argo_pod, review_of, utc
from tests.support.fakes import IMG_2023_01, IMG_2024_06, FakeWorkflowStore, World
from webhook.core.review import parse_review
from webhook.sources import NotRecorded, SourceError, WorkflowState, recording
from webhook.sources.cached import CachedWorkflows
from webhook.sources.recording import RecordWriter

STATE = WorkflowState("argo", "w", "uid-w", utc("2024-07-01T00:00:00Z"), None, {})


@dataclass
class GatedStore:
    """record_many waits for the test to open the gate, so submits pile up meanwhile."""

    name: str = "gated"
    gate: threading.Event = field(default_factory=threading.Event)
    calls: list[dict[str, str]] = field(default_factory=list)
    taken: dict[str, str] = field(default_factory=dict)
    errors: list[Exception] = field(default_factory=list)

    def record_many(self, state: WorkflowState, values: Mapping[str, str]) -> dict[str, str]:
        self.gate.wait(5)
        self.calls.append(dict(values))
        if self.errors:
            raise self.errors.pop(0)
        return {key: self.taken.get(key, value) for key, value in values.items()}


def writer(store: GatedStore) -> tuple[RecordWriter, list[tuple[str, str, str]]]:
    settled: list[tuple[str, str, str]] = []
    return RecordWriter(store, lambda _, k, ours, stood: settled.append((k, ours, stood))), settled


def test_decisions_waiting_for_one_workflow_go_in_one_write() -> None:
    store = GatedStore()
    store.gate.set()
    settled: list[tuple[str, str, str]] = []
    pending = RecordWriter(
        store, lambda _, k, ours, stood: settled.append((k, ours, stood)), linger=3600
    )
    for n in range(6):
        assert pending.submit(STATE, f"k{n}", f"v{n}") is None  # the caller goes on at once
    assert store.calls == []  # still lingering
    assert pending.flush(5)
    assert store.calls == [{f"k{n}": f"v{n}" for n in range(6)}]
    assert sorted(settled) == [(f"k{n}", f"v{n}", f"v{n}") for n in range(6)]


def test_a_decision_another_replica_recorded_first_is_reported() -> None:
    store = GatedStore(taken={"k": "theirs"})
    store.gate.set()
    pending, settled = writer(store)
    pending.submit(STATE, "k", "ours")
    assert pending.flush(5)
    assert settled == [("k", "ours", "theirs")]


def test_a_failing_write_is_tried_again_then_given_up() -> None:
    store = GatedStore(errors=[SourceError("gated", "HTTP 500")] * 2)
    store.gate.set()
    pending, settled = writer(store)
    pending.submit(STATE, "k", "v")
    assert pending.flush(5)
    assert len(store.calls) == 3
    assert settled == [("k", "v", "v")]
    never = GatedStore(errors=[SourceError("gated", "HTTP 500")] * 3)
    never.gate.set()
    pending, settled = writer(never)
    pending.submit(STATE, "k", "v")
    assert pending.flush(5)
    assert settled == []


def test_too_large_is_not_tried_again() -> None:
    store = GatedStore(errors=[NotRecorded("gated", "would exceed 256 KiB")])
    store.gate.set()
    pending, settled = writer(store)
    pending.submit(STATE, "k", "v")
    assert pending.flush(5)
    assert (len(store.calls), settled) == (1, [])


def test_the_queue_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recording, "MAX_PENDING", 3)
    store = GatedStore()
    store.gate.set()
    pending = RecordWriter(store, lambda *_: None, linger=3600)  # nothing leaves on its own
    for n in range(10):
        pending.submit(STATE, f"k{n}", "v")
    assert store.calls == []
    assert pending.flush(5)
    assert store.calls == [{"k0": "v", "k1": "v", "k2": "v"}]


def test_a_workflows_decisions_linger_to_share_one_write() -> None:
    now = [0.0]
    store = GatedStore()
    store.gate.set()
    other = WorkflowState("argo", "x", "uid-x", STATE.created, None, {})
    pending = RecordWriter(store, lambda *_: None, linger=1.0, clock=lambda: now[0])
    pending.submit(STATE, "a", "1")
    pending.submit(other, "c", "3")
    now[0] = 0.5
    pending.submit(STATE, "b", "2")
    assert store.calls == []  # the clock stands still: nothing is due
    assert pending.flush(5)
    assert store.calls == [{"a": "1", "b": "2"}, {"c": "3"}]


def test_a_replica_that_lost_adopts_the_winner_for_later_pods() -> None:
    """Background writes: the first pod runs this replica's decision; once the write
    finds another's standing, every later pod runs that one."""
    store = FakeWorkflowStore()
    store.add("jetstream-abcde", "2024-07-01T00:00:00Z")
    world = World(workflows=store)
    world._cached_workflows = CachedWorkflows(store, 10.0, 100, background=True)
    winner = World(workflows=FakeWorkflowStore())
    assert winner.workflows is not None
    winner.workflows.add("jetstream-abcde", "2024-07-01T00:00:00Z")
    winner.enrollments.enrolled["my-experiment"] = None
    pod = argo_pod("my-experiment", workflow_uid="uid-jetstream-abcde")
    winner.admitter().admit(parse_review(review_of(pod)))
    (theirs,) = winner.workflows.workflows[("argo", "jetstream-abcde")].records.values()
    store.race = theirs
    first = world.admitter().admit(parse_review(review_of(pod)))
    assert first.decision is not None
    assert (
        first.decision.digest_for(
            (first.decision.choices and next(iter(first.decision.choices))) or ""
        )
        == IMG_2023_01.digest
    )
    assert world.cached_workflows is not None
    assert world.cached_workflows.writer.flush(5)
    later = world.admitter().admit(parse_review(review_of(pod)))
    assert later.decision is not None
    assert later.decision.workflow_record == "read"
    assert [c.image.digest for c in later.decision.choices.values()] == [IMG_2024_06.digest]
