"""/readyz: cold sources are let through after a grace period; a missing dataset never is."""

from __future__ import annotations

import contextlib
import time

import pytest

from harness.builders import EXAMPLES, utc
from tests.support.fakes import FakeEnrollments, FakeLister
from webhook.config import CacheConfig, load_config
from webhook.core.datasets import Dataset
from webhook.sources import DatasetMissing, EnrolledExperiment, SourceError
from webhook.sources.cached import CachedEnrollments, Listed
from webhook.wiring import WARMUP_GRACE_SECONDS, Wiring

OURS = Dataset("moz-fx-data-experiments", "mozanalysis")
TYPO = Dataset("moz-fx-data-experiments", "mozanalysis_typo")
ROW = EnrolledExperiment("enrollments_a", None, utc("2024-01-01T00:00:00Z"), "table-name")


def wiring_listing(error: Exception | None, past_grace: bool) -> Wiring:
    """The example wiring with one BigQuery-like listing whose load failed with `error`."""
    wiring = Wiring(load_config(EXAMPLES / "config.yaml"))
    wiring.cached_images = []
    lister = FakeLister(rows=[ROW], error=error)
    wiring.cached_enrollments = CachedEnrollments(FakeEnrollments(), CacheConfig(), lister, [TYPO])
    listing = wiring.cached_enrollments.listings[TYPO]
    with contextlib.suppress(SourceError):
        listing.refresh()
    if past_grace:
        wiring._started = time.monotonic() - WARMUP_GRACE_SECONDS - 1
    return wiring


@pytest.mark.parametrize("past_grace", [False, True], ids=["warming", "past-grace"])
def test_a_missing_dataset_is_never_ready(past_grace: bool) -> None:
    missing = DatasetMissing("bigquery", TYPO, f"tables.list {TYPO}: dataset {TYPO} not found")
    ready, detail = wiring_listing(missing, past_grace).readiness()
    assert not ready
    assert detail == (
        f"enrollments dataset not found (tables.list {TYPO}: dataset {TYPO} not found): "
        "create it, or correct enrollments.allowedDatasets / enrollments.dataset"
    )


@pytest.mark.parametrize(
    ("past_grace", "expected"),
    [
        (False, (False, f"warming up: fake enrollments listing of {TYPO}")),
        (True, (True, f"ready; not warm yet: fake enrollments listing of {TYPO}")),
    ],
)
def test_other_listing_failures_are_let_through_after_the_grace_period(
    past_grace: bool, expected: tuple[bool, str]
) -> None:
    """An outage must not take the webhook out of its Service: the failure policy decides."""
    error = SourceError("bigquery", "tables.list: HTTP 503")
    assert wiring_listing(error, past_grace).readiness() == expected


def test_a_dataset_listed_once_is_ready() -> None:
    assert wiring_listing(None, past_grace=False).readiness() == (True, "ready")


def test_a_dataset_found_again_clears_the_refusal() -> None:
    wiring = wiring_listing(DatasetMissing("bigquery", TYPO, "gone"), past_grace=True)
    lister = wiring.cached_enrollments.listings[TYPO]
    assert wiring.readiness()[0] is False
    lister._load = lambda: Listed({})  # the dataset now exists (and is empty)
    lister.refresh()
    assert wiring.readiness() == (True, "ready")
