"""The static data file: the example loads, and malformed entries are named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.builders import EXAMPLES, JETSTREAM, utc
from webhook.core.datasets import Dataset
from webhook.core.pinning import enrollments_table
from webhook.sources import PendingLister, SourceError
from webhook.sources.static import (
    StaticConfigHistory,
    StaticData,
    StaticDataError,
    StaticEnrollments,
    StaticImages,
    StaticOverrides,
)

DIGEST = "sha256:" + "a" * 64
ANY = Dataset("some-project", "any_dataset")  # the data file answers alike for every dataset


def test_example_data_loads() -> None:
    data = StaticData.load(EXAMPLES / "static-data.yaml")
    clock = StaticEnrollments(data)
    assert clock.enrolled_at("my-experiment", ANY) == utc("2023-01-01T00:00:00Z")
    assert clock.enrolled_at("brand-new-experiment", ANY) is None
    assert clock.enrolled_at("unknown", ANY) is None
    images = StaticImages(data, JETSTREAM).images()
    assert sum(1 for i in images if i.index_child) == 2
    assert all(i.uploaded.tzinfo is not None for i in images)
    history = StaticConfigHistory(data, "metric-hub")
    assert history.sha_at(utc("2023-02-01T00:00:00Z")).startswith("487a50e4")
    assert StaticOverrides(data).slug_pin("long-running-study") == "latest"
    assert StaticOverrides(data).workflow_pin("argo", "wf") is None


def test_times_accept_strings_offsets_and_dates() -> None:
    data = StaticData.parse(
        {
            "enrollments": {
                "a": "2023-01-01T01:00:00+01:00",
                "b": utc("2023-01-01T00:00:00Z"),
                "c": yaml.safe_load("d: 2023-01-01")["d"],
            }
        }
    )
    assert set(data.enrollments.values()) == {utc("2023-01-01T00:00:00Z")}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "must be a mapping"),
        ({"imagez": {}}, "imagez: unknown key"),
        ({"enrollments": {"s": "yesterday"}}, r"enrollments\['s'\]: 'yesterday' is not an RFC"),
        ({"enrollments": {"s": "2023-01-01T00:00:00"}}, "has no time zone"),
        ({"enrollments": {"s": 5}}, "must be an RFC 3339 time, got int"),
        ({"enrollments": ["s"]}, "enrollments: must be a mapping"),
        ({"images": {"r": {}}}, r"images\['r'\]: must be a list"),
        (
            {"images": {"r": [{"digest": "sha256:abc", "uploaded": "2023-01-01T00:00:00Z"}]}},
            r"images\['r'\]\[0\].digest: must be 'sha256:<64",
        ),
        ({"images": {"r": [{"digest": DIGEST}]}}, r"images\['r'\]\[0\].uploaded: required"),
        (
            {"images": {"r": [{"digest": DIGEST, "uploaded": "2023-01-01T00:00:00Z", "x": 1}]}},
            "unknown key 'x'",
        ),
        (
            {"images": {"r": [{"digest": DIGEST, "uploaded": "2023-01-01T00:00:00Z"}] * 2}},
            r"images\['r'\]\[1\].digest: .* is listed twice",
        ),
        (
            {
                "images": {
                    "r": [{"digest": DIGEST, "uploaded": "2023-01-01T00:00:00Z", "tags": "latest"}]
                }
            },
            "tags: must be a list of strings",
        ),
        (
            {
                "images": {
                    "r": [
                        {"digest": DIGEST, "uploaded": "2023-01-01T00:00:00Z", "indexChild": "yes"}
                    ]
                }
            },
            "indexChild: must be true or false",
        ),
        (
            {"commits": {"m": [{"sha": "xyz", "committed": "2023-01-01T00:00:00Z"}]}},
            r"commits\['m'\]\[0\].sha",
        ),
        ({"commits": {"m": [{"sha": "a" * 40}]}}, r"commits\['m'\]\[0\].committed: required"),
        ({"overrides": {"s": 1}}, r"overrides\['s'\]: must be a string"),
    ],
)
def test_malformed_entries_are_named(raw: Any, message: str) -> None:
    with pytest.raises(StaticDataError, match=message):
        StaticData.parse(raw)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "data.yaml"
    with pytest.raises(StaticDataError, match=f"static data {path}: cannot read"):
        StaticData.load(path)
    path.write_text("images: [")
    with pytest.raises(StaticDataError, match="not valid YAML"):
        StaticData.load(path)
    path.write_text("enrollments: {s: nope}")
    with pytest.raises(StaticDataError, match=rf"static data {path}: enrollments\['s'\]"):
        StaticData.load(path)


def test_missing_repository_or_repo() -> None:
    data = StaticData.parse({})
    with pytest.raises(StaticDataError, match="no images for repository r"):
        StaticImages(data, "r")
    with pytest.raises(StaticDataError, match="no commits for config repo m"):
        StaticConfigHistory(data, "m")


def test_empty_commit_list_is_a_source_error() -> None:
    history = StaticConfigHistory(StaticData.parse({"commits": {"m": []}}), "m")
    with pytest.raises(SourceError, match="static commits of m"):
        history.sha_at(None)


def test_static_enrollments_list_every_enrolled_experiment() -> None:
    data = StaticData.load(EXAMPLES / "static-data.yaml")
    listed = StaticEnrollments(data).list_enrolled(ANY)
    slugs = [e.slug for e in listed if e.slug is not None]
    assert "brand-new-experiment" not in slugs  # null: not enrolled
    assert slugs == sorted(slugs)
    assert [e.table for e in listed] == [enrollments_table(slug) for slug in slugs]
    assert {e.slug_source for e in listed} == {"static"}
    assert len(listed) == 4


def test_static_enrollments_also_list_the_not_enrolled() -> None:
    clock = StaticEnrollments(StaticData.load(EXAMPLES / "static-data.yaml"))
    assert isinstance(clock, PendingLister)
    assert clock.list_not_enrolled() == ["brand-new-experiment"]
