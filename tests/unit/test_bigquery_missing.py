"""Which resource a BigQuery 404 names: only our own table missing means "not enrolled"."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as api_errors

from webhook.core.datasets import Dataset
from webhook.sources.bigquery import Missing, error_texts, what_is_missing

OURS = Dataset("moz-fx-data-experiments", "mozanalysis")
SCOPED = Dataset("example.com:analysis", "mozanalysis")
TABLE = "enrollments_my_experiment"


@pytest.mark.parametrize(
    ("text", "dataset", "table", "missing"),
    [
        ("Not found: Table moz-fx-data-experiments:mozanalysis.enrollments_my_experiment",
         OURS, TABLE, Missing.TABLE),
        ("Not found: Table moz-fx-data-experiments:mozanalysis.enrollments_my_experiment "
         "was not found in location US", OURS, TABLE, Missing.TABLE),
        ("Not found: Dataset moz-fx-data-experiments:mozanalysis", OURS, TABLE, Missing.DATASET),
        ("Not found: Dataset moz-fx-data-experiments:mozanalysis was not found in location EU",
         OURS, TABLE, Missing.DATASET),
        ("Not found: Dataset moz-fx-data-experiments:mozanalysis", OURS, None, Missing.DATASET),
        ("Not found: Project moz-fx-data-experiments", OURS, TABLE, Missing.PROJECT),
        ("Not found: Table example.com:analysis:mozanalysis.enrollments_my_experiment",
         SCOPED, TABLE, Missing.TABLE),
        ("Not found: Dataset example.com:analysis:mozanalysis", SCOPED, TABLE, Missing.DATASET),
        # a table is only ours when it names our table in our dataset
        ("Not found: Table moz-fx-data-experiments:mozanalysis.enrollments_other",
         OURS, TABLE, Missing.UNRECOGNISED),
        ("Not found: Table other:mozanalysis.enrollments_my_experiment",
         OURS, TABLE, Missing.UNRECOGNISED),
        ("Not found: Table moz-fx-data-experiments:mozanalysis.enrollments_my_experiment",
         OURS, None, Missing.UNRECOGNISED),  # a listing asks for no table
        ("Not found: Dataset moz-fx-data-experiments:mozanalysis_staging",
         OURS, TABLE, Missing.UNRECOGNISED),
        ("Not found: Project other", OURS, TABLE, Missing.UNRECOGNISED),
        ("<html><title>Error 404 (Not Found)!!1</title></html>", OURS, TABLE, Missing.UNRECOGNISED),
        ("Not found: Tables moz-fx-data-experiments:mozanalysis.enrollments_my_experiment",
         OURS, TABLE, Missing.UNRECOGNISED),
        ("", OURS, TABLE, Missing.UNRECOGNISED),
    ],
)  # fmt: skip
def test_what_is_missing(text: str, dataset: Dataset, table: str | None, missing: Missing) -> None:
    assert what_is_missing([text], dataset, table) is missing


def test_the_texts_of_a_client_error() -> None:
    """`errors[].message` as sent, and the top message without the client's `METHOD URL: `."""
    err = api_errors.NotFound(  # type: ignore[no-untyped-call]
        "GET https://bigquery.googleapis.com/bigquery/v2/projects/p/datasets/d/tables/t"
        "?prettyPrint=false: Not found: Dataset p:d",
        errors=[{"message": "Not found: Dataset p:d", "reason": "notFound"}, "not a dict"],
    )
    assert error_texts(err) == ["Not found: Dataset p:d", "Not found: Dataset p:d"]
    assert what_is_missing(error_texts(err), Dataset("p", "d"), "t") is Missing.DATASET
    bare = api_errors.NotFound("Not found: Project p")  # type: ignore[no-untyped-call]
    assert error_texts(bare) == ["Not found: Project p"]
