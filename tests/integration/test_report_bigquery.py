"""`jetstream-pin report` listing experiments from BigQuery (the real client, a local stand-in).

BigQuery's tables.list names tables, not slugs; the report reads the real
slug from a table's description (tables.get) where the name cannot give it,
and one malformed table costs that table only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.builders import example_config_file, utc
from harness.standins.bigquery import BigQueryStandIn, bigquery_source, running_bigquery
from webhook.cli import main
from webhook.config import load_config
from webhook.wiring import Wiring

BREAKING = "sha256:c71233c8ade3eb276062ed6d399a0770f4499d03947daca2ead8a21c5e890fd3"
MAY_2024 = "sha256:4bba4eebe859c802badf55f8a2bc7015e7009d574a169febeeb92ac2fd622073"
NEWEST = "sha256:e641342ebd29"
PROJECT = "moz-fx-data-experiments"
STAGING = (PROJECT, "mozanalysis_staging")


def config_file(tmp_path: Path, endpoint: str, datasets: list[str] | None = None) -> Path:
    """The example on BigQuery; its static file's overrides: long-running-study: latest."""
    source = bigquery_source(endpoint)
    if datasets is not None:
        source["allowedDatasets"] = datasets
    return example_config_file(tmp_path, enrollments=source)


def experiments(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every listed experiment by (dataset, slug or table), decided or not."""
    (repo,) = document["repositories"]
    found = {}
    for version in repo["versions"]:
        for entry in version["experiments"]:
            found[f"{entry['dataset']} {entry['slug'] or entry['table']}"] = entry | {
                "digest": version["digest"]
            }
    for entry in document["unresolved"]:
        found[f"{entry['dataset']} {entry['slug'] or entry['table']}"] = entry
    return found


def test_report_from_a_paged_bigquery_listing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = BigQueryStandIn(page_size=2)
    with running_bigquery(fake) as bigquery:
        assert bigquery.stand_in is not None
        bigquery.add("enrollments_my_experiment", utc("2023-01-01T00:00:00Z"))
        bigquery.add("enrollments_spring_study", utc("2024-06-01T00:00:00Z"))
        bigquery.add(  # rerun-skip moved it to 2024-05-30 (last_updated wins over creation)
            "enrollments_rerun_skipped", utc("2023-01-01T00:00:00Z"), last_updated=1717034400
        )
        bigquery.add("statistics_my_experiment_week_1", utc("2023-01-08T00:00:00Z"))
        path = config_file(tmp_path, bigquery.stand_in.url)
        assert main(["report", "--config", str(path), "--json"]) == 0
        document = json.loads(capsys.readouterr().out)
        assert main(["report", "--config", str(path)]) == 0
        text = capsys.readouterr().out
        assert bigquery.lists() == 4, "two pages per listing, one listing per command"
        assert bigquery.gets() == 6, "a description per table whose name has '_', per command"
    assert document["enrollmentsSource"] == "bigquery"
    (repo,) = document["repositories"]
    groups = {v["digest"]: [e["table"] for e in v["experiments"]] for v in repo["versions"]}
    assert groups[BREAKING] == ["enrollments_my_experiment"]
    assert groups[MAY_2024] == ["enrollments_rerun_skipped", "enrollments_spring_study"]
    entries = [e for v in repo["versions"] for e in v["experiments"]]
    assert {(e["slug"], e["slugSource"]) for e in entries} == {(None, "table-only")}
    assert "[enrollments_my_experiment]" in text
    assert "[enrollments_…] only the enrollments table is known" in text


def test_the_real_slug_every_dataset_and_a_malformed_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_bigquery() as bigquery:
        assert bigquery.stand_in is not None
        # Jetstream writes the slug as the description: the overrides entry keyed by the
        # real slug (long-running-study: latest) applies, as it does to the pods.
        bigquery.add(
            "enrollments_long_running_study",
            utc("2023-04-02T02:00:00Z"),
            description="long-running-study",
        )
        bigquery.add("enrollments_spring_study", utc("2024-06-01T00:00:00Z"), description="Q2")
        bigquery.add("enrollments_solo", utc("2023-01-01T00:00:00Z"))  # no '_': exact
        bigquery.add("enrollments_bad_label", utc("2023-01-01T00:00:00Z"), last_updated="yesterday")
        bigquery.add("enrollments_no_creation", None)
        bigquery.add(
            "enrollments_staged_one", utc("2024-06-01T00:00:00Z"), description="staged.one",
            dataset=STAGING,
        )  # fmt: skip
        datasets = [f"{PROJECT}.mozanalysis", ".".join(STAGING), f"{PROJECT}.mozanalysis_typo"]
        path = config_file(tmp_path, bigquery.stand_in.url, datasets)
        assert main(["report", "--config", str(path), "--json"]) == 1, "a dataset is missing"
        document = json.loads(capsys.readouterr().out)
        assert main(["report", "--config", str(path)]) == 1
        text = capsys.readouterr().out

        # One Wiring (the status page's) reads each description once.
        wiring = Wiring(load_config(path))
        wiring.inventory()
        gets = bigquery.gets()
        wiring.inventory()
        assert bigquery.gets() == gets, "descriptions are remembered per table"

    assert document["datasets"] == [
        {"dataset": f"{PROJECT}.mozanalysis", "experimentCount": 5, "error": None},
        {"dataset": f"{PROJECT}.mozanalysis_staging", "experimentCount": 1, "error": None},
        {
            "dataset": f"{PROJECT}.mozanalysis_typo",
            "experimentCount": 0,
            "error": f"bigquery: tables.list {PROJECT}.mozanalysis_typo: "
            f"dataset {PROJECT}.mozanalysis_typo not found",
        },
    ]
    found = experiments(document)
    long_running = found[f"{PROJECT}.mozanalysis long-running-study"]
    assert long_running["slugSource"] == "description"
    assert long_running["reason"] == "latest"
    assert long_running["digest"].startswith(NEWEST)
    assert long_running["override"] == "overrides entry for long-running-study"
    # A description that is no slug of the table is free text: only the table is known.
    assert found[f"{PROJECT}.mozanalysis enrollments_spring_study"]["slugSource"] == "table-only"
    assert found[f"{PROJECT}.mozanalysis solo"]["slugSource"] == "table-name"
    assert found[f"{PROJECT}.mozanalysis_staging staged.one"]["slugSource"] == "description"
    assert "not epoch seconds" in found[f"{PROJECT}.mozanalysis enrollments_bad_label"]["error"]
    assert "has no creationTime" in found[f"{PROJECT}.mozanalysis enrollments_no_creation"]["error"]

    lines = text.splitlines()
    assert lines[0].startswith("6 experiments from bigquery (2 not pinnable), as of ")
    assert lines[1].split() == [f"{PROJECT}.mozanalysis", "5", "experiments"]
    assert lines[2].split() == [f"{PROJECT}.mozanalysis_staging", "1", "experiment"]
    assert lines[3].split()[:4] == [f"{PROJECT}.mozanalysis_typo", "not", "listed:", "bigquery:"]
    row = next(line for line in lines if "long-running-study" in line)
    assert row.split()[:2] == ["long-running-study", f"{PROJECT}.mozanalysis"]
    assert any(line.split()[:2] == ["staged.one", ".".join(STAGING)] for line in lines)
