"""A local stand-in of the BigQuery REST API (tables.get, tables.list) for the real client.

It serves several datasets and answers what is missing as BigQuery does: a
404 whose message names the table (`Not found: Table p:d.t`), the dataset
(`Not found: Dataset p:d`) or the project (`Not found: Project p`), with
` was not found in location L` after it when `location` is set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from harness.standins.base import Reply, Request, StandInServer, json_reply, serving

_TABLE = re.compile(r"^/bigquery/v2/projects/([^/]+)/datasets/([^/]+)/tables/([^/]+)$")
_TABLES = re.compile(r"^/bigquery/v2/projects/([^/]+)/datasets/([^/]+)/tables$")


def bigquery_source(url: str, timeout: float = 5.0) -> dict[str, Any]:
    """The `enrollments` config for a stand-in at `url` (anonymous, as the stand-in wants)."""
    return {
        "type": "bigquery", "project": "moz-fx-data-experiments", "dataset": "mozanalysis",
        "credentials": "anonymous", "endpoint": url, "timeoutSeconds": timeout,
    }  # fmt: skip


def millis(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def not_found(what: str, location: str | None = None) -> Reply:
    """BigQuery's own 404 body."""
    message = f"Not found: {what}"
    if location is not None:
        message += f" was not found in location {location}"
    return json_reply(
        {
            "error": {
                "code": 404,
                "message": message,
                "errors": [{"message": message, "domain": "global", "reason": "notFound"}],
                "status": "NOT_FOUND",
            }
        },
        404,
    )


@dataclass
class BigQueryStandIn:
    """Tables of `project.dataset` (`tables`) and of any other datasets added.

    `delay` slows every answer, `page_size` caps list pages, `location` is the
    region BigQuery names in its not-found messages (None: none named).
    """

    project: str = "moz-fx-data-experiments"
    dataset: str = "mozanalysis"
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    delay: float = 0.0
    page_size: int = 1000
    location: str | None = None
    stand_in: StandInServer | None = None
    others: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)

    def add_dataset(self, project: str, dataset: str) -> dict[str, dict[str, Any]]:
        """Another (empty) dataset; its project exists from then on."""
        return self.others.setdefault((project, dataset), {})

    def drop_dataset(self, project: str, dataset: str) -> None:
        self.others.pop((project, dataset), None)

    def add(
        self,
        table: str,
        created: datetime | None,
        last_updated: int | str | None = None,
        description: str | None = None,
        dataset: tuple[str, str] | None = None,
    ) -> None:
        """`created` None and a `last_updated` that is not a number make malformed tables."""
        labels = {"last_updated": str(last_updated)} if last_updated is not None else {}
        tables = self.tables if dataset is None else self.add_dataset(*dataset)
        tables[table] = {"created": created, "labels": labels, "description": description}

    def tables_of(self, project: str, dataset: str) -> dict[str, dict[str, Any]] | None:
        if (project, dataset) == (self.project, self.dataset):
            return self.tables
        return self.others.get((project, dataset))

    def projects(self) -> set[str]:
        return {self.project} | {project for project, _ in self.others}

    def resource(self, project: str, dataset: str, table: str, full: bool) -> dict[str, Any]:
        entry = (self.tables_of(project, dataset) or {})[table]
        body: dict[str, Any] = {
            "kind": "bigquery#table",
            "id": f"{project}:{dataset}.{table}",
            "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
            "type": "TABLE",
        }
        if entry["created"] is not None:
            body["creationTime"] = millis(entry["created"])
        if entry["labels"]:
            body["labels"] = entry["labels"]
        if full:
            body["lastModifiedTime"] = body.get("creationTime", "0")
            body["etag"] = "etag"
            if entry["description"]:
                body["description"] = entry["description"]
        return body

    def _missing(self, project: str, dataset: str) -> Reply | None:
        """BigQuery's 404 when the project or dataset does not exist, else None."""
        if project not in self.projects():
            return not_found(f"Project {project}", self.location)
        if self.tables_of(project, dataset) is None:
            return not_found(f"Dataset {project}:{dataset}", self.location)
        return None

    def __call__(self, request: Request) -> Reply:
        one = _TABLE.match(request.path)
        if one:
            project, dataset, table = one.groups()
            missing = self._missing(project, dataset)
            if missing is not None:
                return self._slow(missing)
            if table not in (self.tables_of(project, dataset) or {}):
                return self._slow(not_found(f"Table {project}:{dataset}.{table}", self.location))
            return self._slow(json_reply(self.resource(project, dataset, table, full=True)))
        listing = _TABLES.match(request.path)
        if listing:
            project, dataset = listing.groups()
            missing = self._missing(project, dataset)
            if missing is not None:
                return self._slow(missing)
            tables = self.tables_of(project, dataset) or {}
            names = sorted(tables)
            start = int(request.param("pageToken") or 0)
            size = min(int(request.param("maxResults") or self.page_size), self.page_size)
            page = names[start : start + size]
            body: dict[str, Any] = {
                "kind": "bigquery#tableList",
                "etag": "etag",
                "tables": [self.resource(project, dataset, name, full=False) for name in page],
                "totalItems": len(names),
            }
            if start + size < len(names):
                body["nextPageToken"] = str(start + size)
            return self._slow(json_reply(body))
        return json_reply({"error": {"code": 404, "message": "no such API"}}, 404)

    def _slow(self, reply: Reply) -> Reply:
        reply.delay = self.delay
        return reply

    def gets(self) -> int:
        assert self.stand_in is not None
        return sum(1 for r in self.stand_in.calls() if _TABLE.match(r.path))

    def lists(self) -> int:
        assert self.stand_in is not None
        return sum(1 for r in self.stand_in.calls() if _TABLES.match(r.path))


@contextmanager
def running_bigquery(bigquery: BigQueryStandIn | None = None) -> Iterator[BigQueryStandIn]:
    """`bigquery` (or an empty one) served on loopback for the block; its `stand_in` set."""
    bigquery = bigquery or BigQueryStandIn()
    with serving(bigquery) as stand_in:
        bigquery.stand_in = stand_in
        yield bigquery
