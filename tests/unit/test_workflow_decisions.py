"""One decision per Workflow and experiment: recorded by the first pod, read by the rest.

The resolver and the real `CachedWorkflows` over a fake Workflow store that
keeps the real one's first-writer-wins rule. What crosses the real API
server (the JSON Patch and its test) is proven in tests/cluster.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from harness.builders import JETSTREAM, argo_pod, review_of, utc
from tests.support.fakes import (
    HISTORY,
    HISTORY_WITH_BREAKING,
    IMG_2023_01,
    IMG_2024_02,
    IMG_2024_06,
    SHA_2023_01,
    FakeWorkflowStore,
    World,
)
from webhook.admission.admitter import Outcome, Result
from webhook.core.datasets import Dataset, DatasetPolicy
from webhook.core.review import parse_review
from webhook.core.workflow_record import decode, record_key
from webhook.sources import NotRecorded, SourceError

MOZANALYSIS = Dataset("moz-fx-data-experiments", "mozanalysis")
CREATED = "2024-07-01T00:00:00Z"  # after every image of the fake history
UID = "uid-jetstream-abcde"


def world_with_workflow(pin: str | None = None) -> tuple[World, FakeWorkflowStore]:
    store = FakeWorkflowStore()
    store.add("jetstream-abcde", CREATED, pin)
    return World(workflows=store), store


def admit(world: World, pod: dict[str, Any], **options: Any) -> Result:
    return world.admitter(**options).admit(parse_review(review_of(pod)))


def admit_review(world: World, review: dict[str, Any]) -> Result:
    return world.admitter().admit(parse_review(review))


def digest_of(result: Result) -> str | None:
    assert result.decision is not None
    return result.decision.digest_for(JETSTREAM)


def test_the_first_pod_records_and_later_pods_read_without_lookups() -> None:
    world, store = world_with_workflow()
    first = admit(world, argo_pod("my-experiment", workflow_uid=UID))
    assert first.outcome == Outcome.PATCHED
    assert first.decision is not None
    assert first.decision.workflow_record == "recorded"
    assert store.writes == [("jetstream-abcde", record_key(MOZANALYSIS, "my-experiment"))]
    lookups = world.lookups
    for _ in range(3):  # every date and retry of the experiment
        later = admit(world, argo_pod("my-experiment", workflow_uid=UID))
        assert later.decision is not None
        assert later.decision.workflow_record == "read"
        assert digest_of(later) == IMG_2023_01.digest
    assert world.lookups == lookups  # no enrollment, registry or config-repo call
    assert len(store.writes) == 1


def test_the_first_decision_reads_enrollment_as_of_the_workflow_creation() -> None:
    world, _ = world_with_workflow()
    admit(world, argo_pod("my-experiment", workflow_uid=UID))
    # creationTimestamp has whole seconds: the Workflow existed by the end of that second
    assert world.enrollments.asked == [
        ("my-experiment", MOZANALYSIS, utc(CREATED) + timedelta(seconds=1))
    ]


@pytest.mark.parametrize(
    ("read_at", "fresh_since"),
    [
        (None, "2024-07-01T00:00:01Z"),  # the end of the creation's whole second
        ("2024-07-01T00:00:00.400000Z", "2024-07-01T00:00:00.400000Z"),  # seen before that
        ("2024-07-01T00:05:00Z", "2024-07-01T00:00:01Z"),  # read long after
    ],
)
def test_facts_must_be_read_after_the_workflow_surely_existed(
    read_at: str | None, fresh_since: str
) -> None:
    state = FakeWorkflowStore().add("w", CREATED)
    state = state.__class__(**{**state.__dict__, "read_at": utc(read_at) if read_at else None})
    assert state.fresh_since == utc(fresh_since)


def test_pods_outside_any_workflow_are_decided_alone_as_before() -> None:
    world, store = world_with_workflow()
    result = admit(world, argo_pod("my-experiment", workflow=None))
    assert result.decision is not None
    assert result.decision.workflow_record == ""
    assert world.enrollments.asked == [("my-experiment", MOZANALYSIS, None)]
    assert store.calls == 0


def test_a_recorded_decision_stands_after_a_breaking_image_and_a_moved_label() -> None:
    world, _ = world_with_workflow()
    assert digest_of(admit(world, argo_pod("my-experiment", workflow_uid=UID))) == (
        IMG_2023_01.digest
    )
    world.images.history = HISTORY_WITH_BREAKING  # a breaking release mid-workflow
    world.enrollments.enrolled["my-experiment"] = utc("2024-06-02T00:00:00Z")  # touched
    for replica in (world, World(workflows=world.workflows)):  # this one and a fresh one
        later = admit(replica, argo_pod("my-experiment", workflow_uid=UID))
        assert digest_of(later) == IMG_2023_01.digest
        assert later.decision is not None
        assert later.decision.shas["metric-hub"] == SHA_2023_01.sha


def test_a_new_workflow_decides_again_with_what_changed() -> None:
    world, store = world_with_workflow()
    admit(world, argo_pod("my-experiment", workflow_uid=UID))
    world.images.history = HISTORY_WITH_BREAKING
    store.add("jetstream-rerun", "2024-07-02T00:00:00Z")
    rerun = admit(world, argo_pod("my-experiment", workflow="jetstream-rerun"))
    assert digest_of(rerun) == IMG_2024_02.digest
    assert rerun.decision is not None
    assert str(rerun.decision.reason) == "breaking"


def test_the_first_decision_sees_the_images_as_of_the_workflow_creation() -> None:
    """As Jetstream, which decides when it submits: a later push is not this run's."""
    store = FakeWorkflowStore()
    store.add("jetstream-abcde", "2024-03-01T00:00:00Z")  # before IMG_2024_06 was pushed
    world = World(workflows=store)
    world.enrollments.enrolled["late-experiment"] = None  # not enrolled: newest, as of then
    assert digest_of(admit(world, argo_pod("late-experiment", workflow_uid=UID))) == (
        IMG_2024_02.digest
    )
    labelled = World(workflows=FakeWorkflowStore())
    assert labelled.workflows is not None
    labelled.workflows.add("jetstream-abcde", "2024-03-01T00:00:00Z", pin="latest")
    assert digest_of(admit(labelled, argo_pod("my-experiment", workflow_uid=UID))) == (
        IMG_2024_02.digest
    )
    # creationTimestamp has whole seconds: an image pushed within that second counts
    same_second = World(workflows=FakeWorkflowStore())
    assert same_second.workflows is not None
    same_second.workflows.add("jetstream-abcde", "2024-06-09T23:59:59Z", pin="latest")
    same_second.images.history = (
        *HISTORY[:3],
        replace(IMG_2024_06, uploaded=utc("2024-06-09T23:59:59.500000Z")),
    )
    assert digest_of(admit(same_second, argo_pod("my-experiment", workflow_uid=UID))) == (
        IMG_2024_06.digest
    )
    plain = World()
    plain.enrollments.enrolled["late-experiment"] = None
    alone = admit(plain, argo_pod("late-experiment", workflow=None))  # no Workflow: now
    assert digest_of(alone) == IMG_2024_06.digest


def test_a_replica_that_loses_the_race_runs_the_winner() -> None:
    world, store = world_with_workflow()
    winner = World(workflows=FakeWorkflowStore())
    winner.workflows.add("jetstream-abcde", CREATED)  # type: ignore[union-attr]
    winner.enrollments.enrolled["my-experiment"] = None  # it saw no table: newest
    admit(winner, argo_pod("my-experiment", workflow_uid=UID))
    assert winner.workflows is not None
    (recorded,) = winner.workflows.workflows[("argo", "jetstream-abcde")].records.values()
    store.race = recorded
    lost = admit(world, argo_pod("my-experiment", workflow_uid=UID))
    assert lost.decision is not None
    assert lost.decision.workflow_record == "read"
    assert digest_of(lost) == IMG_2024_06.digest
    assert store.writes == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # the Workflow label added after the first decision: the decision stands
        ("workflow-label", IMG_2023_01.digest),
        # an overrides entry added after the first decision: the decision stands
        ("overrides-entry", IMG_2023_01.digest),
    ],
)
def test_overrides_added_mid_workflow_do_not_move_it(change: str, expected: str) -> None:
    world, store = world_with_workflow()
    admit(world, argo_pod("my-experiment", workflow_uid=UID))
    if change == "workflow-label":
        state = store.workflows[("argo", "jetstream-abcde")]
        store.workflows[("argo", "jetstream-abcde")] = state.__class__(
            **{**state.__dict__, "pin_label": "latest"}
        )
    else:
        world.overrides.slugs = {"my-experiment": "latest"}
    assert digest_of(admit(world, argo_pod("my-experiment", workflow_uid=UID))) == expected
    store.add(
        "jetstream-next", "2024-07-02T00:00:00Z", "latest" if change == "workflow-label" else None
    )
    fresh = admit(world, argo_pod("my-experiment", workflow="jetstream-next"))
    assert digest_of(fresh) == IMG_2024_06.digest  # a new Workflow picks the override up


def test_the_workflow_label_pins_its_first_decision() -> None:
    world, store = world_with_workflow(pin="latest")
    result = admit(world, argo_pod("my-experiment", workflow_uid=UID))
    assert digest_of(result) == IMG_2024_06.digest
    assert result.decision is not None
    assert str(result.decision.reason) == "latest"
    (raw,) = store.workflows[("argo", "jetstream-abcde")].records.values()
    assert decode(raw).pin is not None


def test_the_overrides_entry_is_read_as_of_the_workflow_creation() -> None:
    world, _ = world_with_workflow()
    world.overrides.slugs = {"my-experiment": "latest"}
    assert digest_of(admit(world, argo_pod("my-experiment", workflow_uid=UID))) == (
        IMG_2024_06.digest
    )


def test_a_pods_own_pin_is_its_own_and_is_not_recorded() -> None:
    world, store = world_with_workflow()
    pinned = admit(world, argo_pod("my-experiment", labels={"jetstream/pin": "latest"}))
    assert digest_of(pinned) == IMG_2024_06.digest
    assert store.writes == []
    plain = admit(world, argo_pod("my-experiment", workflow_uid=UID))
    assert digest_of(plain) == IMG_2023_01.digest


@pytest.mark.parametrize("how", ["dry-run", "audit"])
def test_dry_runs_and_audit_mode_record_nothing(how: str) -> None:
    world, store = world_with_workflow()
    pod = argo_pod("my-experiment", workflow_uid=UID)
    if how == "dry-run":
        result = admit_review(world, review_of(pod, dry_run=True))
    else:
        result = admit(world, pod, mode="audit")
    assert digest_of(result) == IMG_2023_01.digest
    assert store.writes == []


def test_a_workflow_that_does_not_exist_decides_the_pod_alone() -> None:
    world, store = world_with_workflow()
    result = admit(world, argo_pod("my-experiment", workflow="jetstream-gone"))
    assert result.outcome == Outcome.PATCHED
    assert result.decision is not None
    assert result.decision.workflow_record == ""
    assert store.writes == []


def test_a_pod_of_a_recreated_workflow_is_decided_alone() -> None:
    world, store = world_with_workflow()
    result = admit(world, argo_pod("my-experiment", workflow_uid="uid-of-an-older-one"))
    assert result.decision is not None
    assert result.decision.workflow_record == ""
    assert store.writes == []


def test_a_failing_workflow_read_follows_the_failure_policy() -> None:
    world, store = world_with_workflow()
    store.error = SourceError("fake workflows", "HTTP 500")
    result = admit(world, argo_pod("my-experiment", workflow_uid=UID))
    assert result.outcome == Outcome.FAILED_DENIED
    assert result.response["response"]["status"]["code"] == 503
    assert "fake workflows failed: HTTP 500" in result.response["response"]["status"]["message"]


def test_a_decision_too_large_to_record_is_admitted_unrecorded() -> None:
    world, store = world_with_workflow()
    store.refuse = NotRecorded("fake workflows", "annotations would exceed 256 KiB")
    result = admit(world, argo_pod("my-experiment", workflow_uid=UID))
    assert result.outcome == Outcome.PATCHED  # later pods decide again, alike
    assert store.writes == []


def test_an_unreadable_record_is_refused_naming_it() -> None:
    world, store = world_with_workflow()
    key = record_key(MOZANALYSIS, "my-experiment")
    state = store.workflows[("argo", "jetstream-abcde")]
    store.workflows[("argo", "jetstream-abcde")] = state.__class__(
        **{**state.__dict__, "records": {key: "{not json"}}
    )
    result = admit(world, argo_pod("my-experiment", workflow_uid=UID))
    assert result.outcome == Outcome.REFUSED
    status = result.response["response"]["status"]
    assert status["code"] == 422
    assert f"annotation {key} of Workflow argo/jetstream-abcde" in status["message"]


def test_an_already_pinned_pod_reads_the_recorded_shas() -> None:
    world, _ = world_with_workflow()
    admit(world, argo_pod("my-experiment", workflow_uid=UID))
    world.commits.commits = ()  # would fail if asked
    digest_pod = argo_pod(
        "my-experiment", image_ref=f"{JETSTREAM}@{IMG_2024_06.digest}", workflow_uid=UID
    )
    result = admit(world, digest_pod)
    assert result.decision is not None
    assert str(result.decision.reason) == "already-pinned"
    assert result.decision.shas["metric-hub"] == SHA_2023_01.sha


def test_several_experiments_on_the_same_tooling_are_pinned() -> None:
    world = World()
    world.enrollments.enrolled["twin"] = world.enrollments.enrolled["my-experiment"]
    pod = argo_pod("my-experiment")
    pod["spec"]["containers"][1]["command"] += ["--experiment_slug=twin"]
    result = admit(world, pod)
    assert result.outcome == Outcome.PATCHED
    assert digest_of(result) == IMG_2023_01.digest


def test_several_experiments_on_different_tooling_are_refused_naming_them() -> None:
    world = World()
    pod = argo_pod("my-experiment")
    pod["spec"]["containers"][1]["command"] += ["--experiment_slug", "late-experiment"]
    result = admit(world, pod)
    assert result.outcome == Outcome.REFUSED
    status = result.response["response"]["status"]
    assert status["code"] == 400
    assert "'my-experiment', 'late-experiment'" in status["message"]
    assert "separate pods" in status["message"]


def test_a_dataset_off_the_allow_list_is_refused_before_any_lookup() -> None:
    world = World()
    pod = argo_pod("my-experiment")
    pod["spec"]["containers"][1]["command"] += ["--dataset_id=secret_dataset"]
    result = admit(world, pod)
    assert result.outcome == Outcome.REFUSED
    status = result.response["response"]["status"]
    assert status["code"] == 400
    assert "'moz-fx-data-experiments.secret_dataset'" in status["message"]
    assert "enrollments.allowedDatasets" in status["message"]
    assert world.lookups == 0


def test_an_allowed_dataset_is_the_one_read() -> None:
    staging = Dataset("moz-fx-data-experiments", "mozanalysis_staging")
    world = World(datasets=DatasetPolicy.of(MOZANALYSIS, [MOZANALYSIS, staging]))
    pod = argo_pod("my-experiment")
    pod["spec"]["containers"][1]["command"] += ["--dataset-id", "mozanalysis_staging"]
    assert admit(world, pod).outcome == Outcome.PATCHED
    assert world.enrollments.asked == [("my-experiment", staging, None)]


def test_the_record_is_keyed_by_dataset_too() -> None:
    staging = Dataset("moz-fx-data-experiments", "mozanalysis_staging")
    store = FakeWorkflowStore()
    store.add("jetstream-abcde", CREATED)
    world = World(workflows=store, datasets=DatasetPolicy.of(MOZANALYSIS, [MOZANALYSIS, staging]))
    admit(world, argo_pod("my-experiment", workflow_uid=UID))
    pod = argo_pod("my-experiment", workflow_uid=UID)
    pod["spec"]["containers"][1]["command"] += ["--dataset_id=mozanalysis_staging"]
    admit(world, pod)
    assert [key for _, key in store.writes] == [
        record_key(MOZANALYSIS, "my-experiment"),
        record_key(staging, "my-experiment"),
    ]


def test_history_is_unchanged_for_the_default_fakes() -> None:
    """Guard: the tables above rely on the fake world's history being the plain one."""
    assert World().images.history == HISTORY
    assert max(i.uploaded for i in HISTORY) < utc(CREATED)
