"""The real google-cloud-bigquery client against a local stand-in of the BigQuery REST API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.builders import utc
from harness.standins.base import Reply, json_reply
from harness.standins.bigquery import BigQueryStandIn, not_found, running_bigquery
from webhook.config import BigQuerySource
from webhook.core.datasets import Dataset
from webhook.sources import DatasetMissing, SourceError
from webhook.sources.bigquery import BigQueryEnrollments


@pytest.fixture
def bigquery() -> Iterator[BigQueryStandIn]:
    with running_bigquery() as fake:
        fake.add("enrollments_my_experiment", utc("2023-01-01T00:00:00Z"))
        fake.add(
            "enrollments_rerun_skipped",
            utc("2023-01-01T00:00:00Z"),
            last_updated=1700000000,
            description="rerun-skipped",
        )
        fake.add("statistics_my_experiment_week_1", utc("2023-01-08T00:00:00Z"))
        yield fake


MOZANALYSIS = Dataset("moz-fx-data-experiments", "mozanalysis")


def source(
    url: str, timeout: float = 2.0, project: str = "moz-fx-data-experiments"
) -> BigQueryEnrollments:
    return BigQueryEnrollments(
        BigQuerySource("bigquery", project, "mozanalysis", "anonymous", url, timeout)
    )


def test_creation_time_label_and_not_found(bigquery: BigQueryStandIn) -> None:
    assert bigquery.stand_in is not None
    clock = source(bigquery.stand_in.url)
    assert clock.enrolled_at("my-experiment", MOZANALYSIS) == utc("2023-01-01T00:00:00Z")
    assert clock.enrolled_at("my_experiment", MOZANALYSIS) == utc("2023-01-01T00:00:00Z")
    assert clock.enrolled_at("rerun.skipped", MOZANALYSIS) == utc("2023-11-14T22:13:20Z")
    assert clock.enrolled_at("never-enrolled", MOZANALYSIS) is None
    paths = [r.path for r in bigquery.stand_in.calls()]
    assert paths[0].endswith(
        "/projects/moz-fx-data-experiments/datasets/mozanalysis/tables/enrollments_my_experiment"
    )
    assert all("authorization" not in r.headers for r in bigquery.stand_in.calls())


def test_listing_pages_through_every_enrollments_table(bigquery: BigQueryStandIn) -> None:
    assert bigquery.stand_in is not None
    for day in range(1, 8):
        bigquery.add(f"enrollments_exp_{day}", utc(f"2024-01-0{day}T00:00:00Z"))
    bigquery.page_size = 3
    listed = source(bigquery.stand_in.url).list_enrolled(MOZANALYSIS)
    assert bigquery.lists() == 4  # 10 tables, 3 per page
    assert sorted(e.table for e in listed) == sorted(
        f"enrollments_{name}"
        for name in ["my_experiment", "rerun_skipped", *(f"exp_{d}" for d in range(1, 8))]
    )
    by_table = {e.table: e for e in listed}
    assert by_table["enrollments_rerun_skipped"].enrolled_at == utc("2023-11-14T22:13:20Z")
    # tables.list carries no description: the listing names tables, never a slug
    assert {(e.slug, e.slug_source, e.error) for e in listed} == {(None, "table-name", "")}


def test_a_malformed_table_costs_that_table_only(bigquery: BigQueryStandIn) -> None:
    assert bigquery.stand_in is not None
    bigquery.add("enrollments_bad_label", utc("2024-01-01T00:00:00Z"), last_updated="yesterday")
    bigquery.add("enrollments_no_creation", None)
    listed = {e.table: e for e in source(bigquery.stand_in.url).list_enrolled(MOZANALYSIS)}
    assert listed["enrollments_my_experiment"].enrolled_at == utc("2023-01-01T00:00:00Z")
    assert listed["enrollments_bad_label"].enrolled_at is None
    assert listed["enrollments_bad_label"].error == (
        "table enrollments_bad_label has label last_updated='yesterday': not epoch seconds"
    )
    assert listed["enrollments_no_creation"].error == (
        "malformed answer: table enrollments_no_creation has no creationTime"
    )


def test_a_tables_description_names_its_slug(bigquery: BigQueryStandIn) -> None:
    assert bigquery.stand_in is not None
    clock = source(bigquery.stand_in.url)
    assert clock.table_description(MOZANALYSIS, "enrollments_rerun_skipped") == "rerun-skipped"
    assert clock.table_description(MOZANALYSIS, "enrollments_my_experiment") is None
    assert clock.table_description(MOZANALYSIS, "enrollments_gone") is None
    with pytest.raises(DatasetMissing):
        clock.table_description(Dataset("moz-fx-data-experiments", "typo"), "enrollments_x")


STAGING = Dataset("moz-fx-data-experiments", "mozanalysis_staging")


@pytest.mark.parametrize("location", [None, "US"], ids=["plain", "with-location"])
def test_a_missing_table_is_not_enrolled_a_missing_dataset_is_an_outage(
    bigquery: BigQueryStandIn, location: str | None
) -> None:
    assert bigquery.stand_in is not None
    bigquery.location = location
    bigquery.add(
        "enrollments_staged",
        utc("2024-02-01T00:00:00Z"),
        dataset=("moz-fx-data-experiments", "mozanalysis_staging"),
    )
    clock = source(bigquery.stand_in.url)
    assert clock.enrolled_at("staged", STAGING) == utc("2024-02-01T00:00:00Z")
    assert clock.enrolled_at("my-experiment", STAGING) is None  # that dataset exists: not enrolled
    typo = Dataset("moz-fx-data-experiments", "mozanalysis_typo")
    with pytest.raises(DatasetMissing) as get_missing:
        clock.enrolled_at("my-experiment", typo)
    assert get_missing.value.dataset == typo
    assert get_missing.value.cause == (
        "tables.get moz-fx-data-experiments.mozanalysis_typo.enrollments_my_experiment: "
        "dataset moz-fx-data-experiments.mozanalysis_typo not found"
    )
    with pytest.raises(
        DatasetMissing,
        match=rf"tables.list {typo}: dataset {typo} not found",
    ):
        clock.list_enrolled(typo)
    nowhere = Dataset("nope", "mozanalysis")
    with pytest.raises(
        DatasetMissing, match=r"project nope \(of dataset nope.mozanalysis\) not found"
    ):
        clock.enrolled_at("my-experiment", nowhere)
    with pytest.raises(DatasetMissing, match=r"tables.list nope.mozanalysis: project nope"):
        clock.list_enrolled(nowhere)


def test_a_404_that_names_nothing_of_ours_is_a_failure(bigquery: BigQueryStandIn) -> None:
    """A 404 from a proxy (HTML) or naming another resource is never "not enrolled"."""
    assert bigquery.stand_in is not None
    clock = source(bigquery.stand_in.url)
    bigquery.stand_in.fault = Reply(
        404, b"<html><title>Error 404 (Not Found)!!1</title></html>", {"Content-Type": "text/html"}
    )
    with pytest.raises(
        SourceError, match="HTTP 404 naming neither the table nor its dataset"
    ) as html:
        clock.enrolled_at("my-experiment", MOZANALYSIS)
    assert not isinstance(html.value, DatasetMissing)
    bigquery.stand_in.fault = not_found("Table other-project:elsewhere.enrollments_my_experiment")
    with pytest.raises(SourceError, match="Not found: Table other-project:elsewhere"):
        clock.enrolled_at("my-experiment", MOZANALYSIS)


@pytest.mark.parametrize(
    ("reply", "cause"),
    [
        (
            json_reply({"error": {"code": 401, "message": "Login Required"}}, 401),
            "not authorized: the credentials were refused",
        ),
        (
            json_reply({"tableReference": {"projectId": "p", "datasetId": "d", "tableId": "t"}}),
            "has no creationTime",
        ),
        (
            json_reply(
                {
                    "tableReference": {"projectId": "p", "datasetId": "d", "tableId": "t"},
                    "creationTime": "1",
                    "labels": {"last_updated": "yesterday"},
                }
            ),
            "last_updated='yesterday': not epoch seconds",
        ),
    ],
    ids=["401", "no creationTime", "bad label"],
)
def test_faults_are_source_errors(bigquery: BigQueryStandIn, reply: Reply, cause: str) -> None:
    assert bigquery.stand_in is not None
    bigquery.stand_in.fault = reply
    with pytest.raises(SourceError, match=cause) as caught:
        source(bigquery.stand_in.url, timeout=0.5).enrolled_at("my-experiment", MOZANALYSIS)
    assert caught.value.source == "bigquery"
