"""The decision annotation on a Workflow: written, read back alike, refused when not ours."""

from __future__ import annotations

import json

import pytest

from harness.builders import utc
from tests.support.fakes import IMG_2023_01, IMG_2024_02_BREAKING, SHA_2023_01
from webhook.core.datasets import Dataset
from webhook.core.pinning import ImageChoice, ImageRule, PinDigest, PinLatest, Reason
from webhook.core.workflow_record import (
    ExperimentDecision,
    MalformedRecord,
    decode,
    encode,
    record_key,
)

DATASET = Dataset("moz-fx-data-experiments", "mozanalysis")
REPO = "gcr.io/moz-fx-data-experiments/jetstream"
BREAKING = IMG_2024_02_BREAKING


@pytest.mark.parametrize(
    "decision",
    [
        ExperimentDecision(
            "my-experiment", DATASET, Reason.ENROLLMENT, utc("2023-02-01T00:00:00Z"), True,
            {REPO: ImageChoice(IMG_2023_01, ImageRule.AT_OR_BEFORE, utc("2023-02-01T00:00:00Z"))},
            {"metric-hub": SHA_2023_01.sha},
        ),
        ExperimentDecision(
            "x", DATASET, Reason.BREAKING, utc("2023-12-01T00:00:00.123456Z"), True,
            {REPO: ImageChoice(BREAKING, ImageRule.BREAKING, BREAKING.uploaded)},
            {},
        ),
        ExperimentDecision(
            "new", DATASET, Reason.LATEST, None, False,
            {REPO: ImageChoice(IMG_2023_01, ImageRule.NEWEST, None)}, {}, PinLatest("label"),
        ),
        ExperimentDecision(
            "d", Dataset("example.com:p", "ds"), Reason.OVERRIDE, None, True, {}, {},
            PinDigest("abcdef012345", "overrides entry for d"),
        ),
    ],
    ids=["enrollment", "breaking", "latest", "digest"],
)  # fmt: skip
def test_round_trip(decision: ExperimentDecision) -> None:
    text = encode(decision, "pod-1", utc("2024-06-03T00:00:00Z"))
    back = decode(text)
    assert back.slug == decision.slug
    assert back.dataset == decision.dataset
    assert (back.reason, back.enrolled_at, back.enrollment_consulted) == (
        decision.reason, decision.enrolled_at, decision.enrollment_consulted,
    )  # fmt: skip
    assert {r: (c.image.digest, c.rule, c.effective_time) for r, c in back.choices.items()} == {
        r: (c.image.digest, c.rule, c.effective_time) for r, c in decision.choices.items()
    }
    assert back.shas == decision.shas
    assert back.pin == decision.pin
    assert json.loads(text)["firstPod"] == "pod-1"


def test_keys_are_annotation_names_per_dataset_and_slug() -> None:
    key = record_key(DATASET, "a" * 200)
    assert key.startswith("jetstream/decision-")
    assert len(key.partition("/")[2]) <= 63
    assert record_key(DATASET, "s") != record_key(Dataset("p-roject", "mozanalysis"), "s")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ("[]", "not a version 1 decision"),
        ('{"v": 2}', "not a version 1 decision"),
        ('{"v": 1, "dataset": "nodot", "reason": "enrollment"}', "not 'project.dataset'"),
        ('{"v": 1, "dataset": "p.d", "reason": "whim"}', "whim"),
        ('{"v": 1, "dataset": "p.d", "reason": "latest", "consulted": "yes"}', "consulted"),
    ],
)
def test_what_is_not_a_decision_is_named(text: str, message: str) -> None:
    with pytest.raises(MalformedRecord, match=message):
        decode(text)
