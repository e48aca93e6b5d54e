"""The enrollment clock in BigQuery: one `enrollments_<slug>` table per experiment.

Jetstream creates the table on an experiment's first analysis and never
rewrites it; `rerun-skip` moves its `last_updated` label forward to adopt new
tooling. So the label (epoch seconds), else the creation time, is when the
experiment enrolled; no table means it has not enrolled yet.

Calls use the real google-cloud-bigquery client with retries off: one attempt
bounded by `timeoutSeconds` in all (body included, see `WallClockSession`),
because admission is on the critical path and
the failure policy, not a retry loop, decides what happens next.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import google.api_core.exceptions as api_errors
import google.auth.exceptions
import requests
from google.api_core.client_options import ClientOptions
from google.cloud import bigquery

from webhook.config import BigQuerySource
from webhook.datasets import Dataset
from webhook.pinning import enrollments_table
from webhook.sources import EnrolledExperiment, SourceError
from webhook.sources.google import GoogleCredentials, WallClockSession

TABLE_PREFIX = "enrollments_"
LAST_UPDATED = "last_updated"
_EPOCH_SECONDS = re.compile(r"\d{1,12}")
T = TypeVar("T")
# One attempt only (the library's type hints omit None, which it accepts).
NO_RETRY: Any = None


def enrollment_time(
    labels: Mapping[str, str] | None, created: datetime | None, source: str, table: str
) -> datetime:
    """The label `last_updated` if present, else the creation time (both from BigQuery)."""
    label = (labels or {}).get(LAST_UPDATED)
    if label is not None:
        if not _EPOCH_SECONDS.fullmatch(label):
            raise SourceError(
                source, f"table {table} has label last_updated={label[:40]!r}: not epoch seconds"
            )
        return datetime.fromtimestamp(int(label), UTC)
    if created is None:
        raise SourceError(source, f"malformed answer: table {table} has no creationTime")
    return created.astimezone(UTC)


class BigQueryEnrollments:
    def __init__(
        self, config: BigQuerySource, credentials: GoogleCredentials | None = None
    ) -> None:
        self.config = config
        self.name = "bigquery"
        self.credentials = credentials or GoogleCredentials(
            self.name, config.credentials, config.timeout_seconds
        )
        self._client: bigquery.Client | None = None
        self._lock = threading.Lock()

    def client(self) -> bigquery.Client:
        with self._lock:
            if self._client is None:
                options = (
                    ClientOptions(api_endpoint=self.config.endpoint)
                    if self.config.endpoint
                    else None
                )
                credentials = self.credentials.credentials()
                self._client = bigquery.Client(
                    project=self.config.project,
                    credentials=credentials,
                    client_options=options,
                    _http=WallClockSession(credentials, self.config.timeout_seconds),
                )
            return self._client

    @staticmethod
    def table_id(slug: str, dataset: Dataset) -> str:
        return f"{dataset}.{enrollments_table(slug)}"

    def enrolled_at(
        self, slug: str, dataset: Dataset, fresh_since: datetime | None = None
    ) -> datetime | None:
        """Read now (so fresh whatever `fresh_since` asks)."""
        table_id = self.table_id(slug, dataset)

        def get() -> Any:
            return self.client().get_table(
                table_id, retry=NO_RETRY, timeout=self.config.timeout_seconds
            )

        try:
            table = self._call(get, f"tables.get {table_id}")
        except _NotFound:
            return None
        return enrollment_time(table.labels, table.created, self.name, table_id)

    def list_enrolled(self, dataset: Dataset) -> list[EnrolledExperiment]:
        """Every `enrollments_*` table of the dataset, from one paged tables.list."""

        def listing() -> list[Any]:
            pages = self.client().list_tables(
                str(dataset), page_size=1000, retry=NO_RETRY, timeout=self.config.timeout_seconds
            )
            return list(pages)

        try:
            tables = self._call(listing, f"tables.list {dataset}")
        except _NotFound:
            raise SourceError(self.name, f"dataset {dataset} not found") from None
        experiments = []
        for table in tables:
            name = table.table_id or ""
            if not name.startswith(TABLE_PREFIX) or name == TABLE_PREFIX:
                continue
            when = enrollment_time(table.labels, table.created, self.name, name)
            experiments.append(EnrolledExperiment(name[len(TABLE_PREFIX) :], when, "table-name"))
        return experiments

    def _call(self, call: Callable[[], T], what: str) -> T:
        timeout = self.config.timeout_seconds
        try:
            return call()
        except api_errors.NotFound:
            raise _NotFound from None
        except (api_errors.Unauthorized, api_errors.Forbidden) as err:
            raise SourceError(
                self.name,
                f"{what}: HTTP {err.code}: not authorized (needs BigQuery metadata viewer)",
            ) from None
        except api_errors.GoogleAPICallError as err:
            raise SourceError(self.name, f"{what}: HTTP {err.code or 'error'}") from None
        except requests.Timeout:
            raise SourceError(self.name, f"{what}: timed out after {timeout:g}s") from None
        except requests.ConnectionError:
            raise SourceError(self.name, f"{what}: cannot connect") from None
        except google.auth.exceptions.GoogleAuthError as err:
            raise SourceError(
                self.name,
                f"{what}: not authorized: the credentials were refused or cannot be refreshed "
                f"({type(err).__name__})",
            ) from None
        except ValueError:
            raise SourceError(self.name, f"{what}: malformed answer") from None


class _NotFound(Exception):
    """The table (or dataset) does not exist: a fact, not a failure."""
