"""`explain` against a live source shows what each source answered, and which one failed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.builders import example_config_file, utc
from harness.standins.base import json_reply
from harness.standins.bigquery import bigquery_source, running_bigquery
from webhook.cli import main


def config_file(tmp_path: Path, bigquery_url: str, **enrollments: Any) -> str:
    source = bigquery_source(bigquery_url, timeout=1) | enrollments
    return str(example_config_file(tmp_path, enrollments=source))


def test_explain_shows_the_bigquery_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_bigquery() as bigquery:
        assert bigquery.stand_in is not None
        bigquery.add("enrollments_live_one", utc("2024-05-30T02:00:00Z"), last_updated=1717034400)
        config = config_file(tmp_path, bigquery.stand_in.url)
        assert main(["explain", "--config", config, "--slug", "live-one", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["enrolledAt"] == "2024-05-30T02:00:00Z"
    (answer,) = [a for a in report["sources"] if a["source"].startswith("bigquery")]
    assert answer == {
        "source": "bigquery",
        "question": "enrollment time of live-one in moz-fx-data-experiments.mozanalysis",
        "answer": "2024-05-30T02:00:00Z",
        "ms": answer["ms"],
    }


def test_explain_names_the_failing_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_bigquery() as bigquery:
        assert bigquery.stand_in is not None
        bigquery.stand_in.fault = json_reply({"error": {"code": 503}}, 503)
        config = config_file(tmp_path, bigquery.stand_in.url)
        assert main(["explain", "--config", config, "--slug", "live-one"]) == 2
    err = capsys.readouterr().err
    assert "bigquery: enrollment time of live-one in moz-fx-data-experiments.mozanalysis" in err
    assert "FAILED: bigquery: tables.get" in err
    assert "HTTP 503" in err


def test_explain_reads_the_dataset_named_and_says_when_it_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    staging = "moz-fx-data-experiments.mozanalysis_staging"
    typo = "moz-fx-data-experiments.mozanalysis_typo"
    with running_bigquery() as bigquery:
        assert bigquery.stand_in is not None
        bigquery.add(
            "enrollments_live_one",
            utc("2024-05-30T02:00:00Z"),
            dataset=("moz-fx-data-experiments", "mozanalysis_staging"),
        )
        path = config_file(tmp_path, bigquery.stand_in.url, allowedDatasets=[staging, typo])
        argv = ["explain", "--config", path, "--slug", "live-one", "--json"]
        assert main([*argv, "--dataset", staging]) == 0
        report = json.loads(capsys.readouterr().out)
        assert main([*argv, "--dataset", typo]) == 2
        err = capsys.readouterr().err
    assert (report["dataset"], report["enrolledAt"]) == (staging, "2024-05-30T02:00:00Z")
    assert f"FAILED: bigquery: tables.get {typo}.enrollments_live_one" in err
    assert f"dataset {typo} not found" in err
    assert "not enrolled" not in err
