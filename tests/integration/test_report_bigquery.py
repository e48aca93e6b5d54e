"""`jetstream-pin report` listing experiments from BigQuery (the real client, a local stand-in)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.bigquery_standin import FakeBigQuery, bigquery_source, running_bigquery
from tests.builders import EXAMPLES, utc
from webhook.cli import main

BREAKING = "sha256:c71233c8ade3eb276062ed6d399a0770f4499d03947daca2ead8a21c5e890fd3"
MAY_2024 = "sha256:4bba4eebe859c802badf55f8a2bc7015e7009d574a169febeeb92ac2fd622073"


def config_file(tmp_path: Path, endpoint: str) -> Path:
    config = yaml.safe_load((EXAMPLES / "config.yaml").read_text())
    config["static"] = str(EXAMPLES / "static-data.yaml")
    config["enrollments"] = bigquery_source(endpoint)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_report_from_a_paged_bigquery_listing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeBigQuery(page_size=2)
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
        assert bigquery.gets() == 0, "no per-slug lookups"
    assert document["enrollmentsSource"] == "bigquery"
    (repo,) = document["repositories"]
    groups = {v["digest"]: [e["slug"] for e in v["experiments"]] for v in repo["versions"]}
    assert groups[BREAKING] == ["my_experiment"]
    assert groups[MAY_2024] == ["rerun_skipped", "spring_study"]
    sources = {e["slugSource"] for v in repo["versions"] for e in v["experiments"]}
    assert sources == {"table-name"}
    assert "my_experiment*" in text
    assert "each '_' may stand for '-' or '.'" in text
