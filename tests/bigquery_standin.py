"""A local stand-in of the BigQuery REST API (tables.get, tables.list) for the real client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.standins import Reply, Request, StandIn, json_reply, serving

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


def not_found(what: str) -> Reply:
    """BigQuery's own 404 body."""
    message = f"Not found: {what}"
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
class FakeBigQuery:
    """Tables of one dataset; `delay` slows every answer, `page_size` caps list pages."""

    project: str = "moz-fx-data-experiments"
    dataset: str = "mozanalysis"
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    delay: float = 0.0
    page_size: int = 1000
    stand_in: StandIn | None = None

    def add(
        self,
        table: str,
        created: datetime,
        last_updated: int | None = None,
        description: str | None = None,
    ) -> None:
        labels = {"last_updated": str(last_updated)} if last_updated is not None else {}
        self.tables[table] = {"created": created, "labels": labels, "description": description}

    def resource(self, table: str, full: bool) -> dict[str, Any]:
        entry = self.tables[table]
        body: dict[str, Any] = {
            "kind": "bigquery#table",
            "id": f"{self.project}:{self.dataset}.{table}",
            "tableReference": {
                "projectId": self.project,
                "datasetId": self.dataset,
                "tableId": table,
            },
            "type": "TABLE",
            "creationTime": millis(entry["created"]),
        }
        if entry["labels"]:
            body["labels"] = entry["labels"]
        if full:
            body["lastModifiedTime"] = millis(entry["created"])
            body["etag"] = "etag"
            if entry["description"]:
                body["description"] = entry["description"]
        return body

    def route(self, request: Request) -> Reply:
        one = _TABLE.match(request.path)
        if one:
            project, dataset, table = one.groups()
            if (project, dataset) != (self.project, self.dataset) or table not in self.tables:
                return self._slow(not_found(f"Table {project}:{dataset}.{table}"))
            return self._slow(json_reply(self.resource(table, full=True)))
        listing = _TABLES.match(request.path)
        if listing:
            if listing.groups() != (self.project, self.dataset):
                return self._slow(not_found(f"Dataset {self.project}:{listing.group(2)}"))
            names = sorted(self.tables)
            start = int(request.param("pageToken") or 0)
            size = min(int(request.param("maxResults") or self.page_size), self.page_size)
            page = names[start : start + size]
            body: dict[str, Any] = {
                "kind": "bigquery#tableList",
                "etag": "etag",
                "tables": [self.resource(name, full=False) for name in page],
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
def running_bigquery(fake: FakeBigQuery | None = None) -> Iterator[FakeBigQuery]:
    fake = fake or FakeBigQuery()
    with serving(fake.route) as stand_in:
        fake.stand_in = stand_in
        yield fake
