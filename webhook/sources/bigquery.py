"""The enrollment clock in BigQuery: one `enrollments_<slug>` table per experiment.

Jetstream creates the table on an experiment's first analysis and never
rewrites it; `rerun-skip` moves its `last_updated` label forward to adopt new
tooling. So the label (epoch seconds), else the creation time, is when the
experiment enrolled; no table means it has not enrolled yet.

Calls use the real google-cloud-bigquery client with retries off: one attempt
bounded by `timeoutSeconds` in all (body included, see `WallClockSession`),
because admission is on the critical path and
the failure policy, not a retry loop, decides what happens next.

BigQuery answers 404 for a missing table and for a missing dataset or
project alike; only the error's text tells them apart (`Not found: Table
p:d.t`, `Not found: Dataset p:d`, `Not found: Project p`, sometimes followed
by ` was not found in location US`). Only our own table missing means "not
enrolled"; anything else is a lookup failure (`what_is_missing`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

import google.api_core.exceptions as api_errors
import google.auth.exceptions
import requests
from google.api_core.client_options import ClientOptions
from google.cloud import bigquery

from webhook.config import BigQuerySource
from webhook.core.datasets import Dataset
from webhook.core.pinning import TABLE_PREFIX, enrollments_table
from webhook.sources import DatasetMissing, EnrolledExperiment, SourceError
from webhook.sources.google import GoogleCredentials, WallClockSession

LAST_UPDATED = "last_updated"
_EPOCH_SECONDS = re.compile(r"\d{1,12}")
_NOT_FOUND = re.compile(
    r"Not found: (?P<kind>Table|Dataset|Project) (?P<name>\S+?)(?: was not found in location \S+)?"
)
_METHOD_URL = re.compile(r"[A-Z]+ \S+: (?P<message>.*)", re.DOTALL)
_EXCERPT = 100
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


class Missing(StrEnum):
    """What a BigQuery 404 says is missing."""

    TABLE = "table"
    DATASET = "dataset"
    PROJECT = "project"
    UNRECOGNISED = "unrecognised"


def what_is_missing(texts: Iterable[str], dataset: Dataset, table: str | None) -> Missing:
    """Which of our resources a 404's error texts name; anything else is UNRECOGNISED.

    BigQuery names a table `project:dataset.table`, a dataset `project:dataset`
    (a domain-scoped project `example.com:p` keeps its own colon). A text naming
    some other table or dataset is not trusted to mean ours is missing.
    """
    expected = {
        "Table": f"{dataset.project}:{dataset.dataset}.{table}" if table else None,
        "Dataset": f"{dataset.project}:{dataset.dataset}",
        "Project": dataset.project,
    }
    for text in texts:
        match = _NOT_FOUND.fullmatch(text.strip())
        if match and match["name"] == expected[match["kind"]]:
            return Missing(match["kind"].lower())
    return Missing.UNRECOGNISED


def error_texts(err: api_errors.GoogleAPICallError) -> list[str]:
    """The messages of a client error: each of `errors[].message`, then the top one.

    The client prefixes the top message with `METHOD URL: `, which is cut off.
    """
    texts = [
        e["message"]
        for e in err.errors
        if isinstance(e, dict) and isinstance(e.get("message"), str)
    ]
    prefixed = _METHOD_URL.match(err.message)
    texts.append(prefixed["message"] if prefixed else err.message)
    return texts


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
        table = self._get_table(dataset, enrollments_table(slug))
        if table is None:
            return None
        return enrollment_time(table.labels, table.created, self.name, self.table_id(slug, dataset))

    def _get_table(self, dataset: Dataset, table: str) -> Any:
        """tables.get; None when the table (and only the table) does not exist."""
        table_id = f"{dataset}.{table}"

        def get() -> Any:
            return self.client().get_table(
                table_id, retry=NO_RETRY, timeout=self.config.timeout_seconds
            )

        what = f"tables.get {table_id}"
        try:
            return self._call(get, what)
        except _NotFound as err:
            if what_is_missing(err.texts, dataset, table) is Missing.TABLE:
                return None
            raise self._not_found(err, dataset, what) from None

    def list_enrolled(self, dataset: Dataset) -> list[EnrolledExperiment]:
        """Every `enrollments_*` table of the dataset, from one paged tables.list."""

        def listing() -> list[Any]:
            pages = self.client().list_tables(
                str(dataset), page_size=1000, retry=NO_RETRY, timeout=self.config.timeout_seconds
            )
            return list(pages)

        what = f"tables.list {dataset}"
        try:
            tables = self._call(listing, what)
        except _NotFound as err:
            raise self._not_found(err, dataset, what) from None
        experiments = []
        for table in tables:
            name = table.table_id or ""
            if not name.startswith(TABLE_PREFIX) or name == TABLE_PREFIX:
                continue
            try:
                when = enrollment_time(table.labels, table.created, self.name, name)
            except SourceError as err:  # this table only: the others are still listed
                experiments.append(EnrolledExperiment(name, None, None, "table-name", err.cause))
                continue
            experiments.append(EnrolledExperiment(name, None, when, "table-name"))
        return experiments

    def table_description(self, dataset: Dataset, table: str) -> str | None:
        """The table's description (Jetstream writes the slug there); None: none, or no table."""
        found = self._get_table(dataset, table)
        description = found.description if found is not None else None
        return description if isinstance(description, str) and description else None

    def _not_found(self, err: _NotFound, dataset: Dataset, what: str) -> SourceError:
        """A 404 that is not our table missing: the dataset or project, or one not understood."""
        missing = what_is_missing(err.texts, dataset, None)
        if missing is Missing.DATASET:
            return DatasetMissing(self.name, dataset, f"{what}: dataset {dataset} not found")
        if missing is Missing.PROJECT:
            return DatasetMissing(
                self.name,
                dataset,
                f"{what}: project {dataset.project} (of dataset {dataset}) not found",
            )
        excerpt = " ".join(err.texts[-1].split())[:_EXCERPT]
        return SourceError(
            self.name, f"{what}: HTTP 404 naming neither the table nor its dataset: {excerpt!r}"
        )

    def _call(self, call: Callable[[], T], what: str) -> T:
        timeout = self.config.timeout_seconds
        try:
            return call()
        except api_errors.NotFound as err:
            raise _NotFound(error_texts(err)) from None
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
    """BigQuery answered 404; `texts` say what is missing (see `what_is_missing`)."""

    def __init__(self, texts: list[str]) -> None:
        super().__init__(texts)
        self.texts = texts
