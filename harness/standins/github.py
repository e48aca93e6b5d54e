"""A stand-in for GitHub's "list commits" endpoint, as documented (`GithubStandIn`).

`GET {prefix}/repos/{owner}/{repo}/commits?sha=BRANCH&until=T&per_page=N&page=P`
answers the branch's commits committed at or before T, newest first, one
page at a time, with a `Link` header (`rel="next"`, `rel="last"`) pointing
at `{prefix}/repositories/{id}/commits?...` as GitHub does. Unknown
repositories and branches get 404 with GitHub's error body.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from harness.builders import utc
from harness.standins.base import Reply, Request, json_reply
from webhook.core.pinning import Commit

REPOSITORY_ID = "519"


@dataclass
class GithubStandIn:
    """The route: `commits` newest first (GitHub's order); `base` is set once serving."""

    commits: Sequence[Commit]
    repo: str = "mozilla/metric-hub"
    branch: str = "main"
    prefix: str = ""
    base: str = ""
    link_base: str | None = None  # where Link headers point (default: this stand-in)
    answered: list[str] = field(default_factory=list)

    def __call__(self, request: Request) -> Reply:
        by_name = f"{self.prefix}/repos/{self.repo}/commits"
        by_id = f"{self.prefix}/repositories/{REPOSITORY_ID}/commits"
        if request.path not in (by_name, by_id):
            return json_reply({"message": "Not Found"}, 404)
        if request.param("sha", self.branch) != self.branch:
            return json_reply({"message": f"No commit found for SHA: {request.param('sha')}"}, 404)
        until = request.param("until")
        chosen = [c for c in self.commits if until is None or c.committed <= utc(until)]
        per_page = int(request.param("per_page") or 30)
        page = int(request.param("page") or 1)
        items = chosen[(page - 1) * per_page : page * per_page]
        self.answered.extend(c.sha for c in items)
        headers = {"Content-Type": "application/json"}
        pages = (len(chosen) + per_page - 1) // per_page
        if pages > 1:
            headers["Link"] = self._links(request, page, pages)
        return Reply(200, [commit_json(c) for c in items], headers)

    def _links(self, request: Request, page: int, pages: int) -> str:
        base = f"{self.link_base or self.base}{self.prefix}/repositories/{REPOSITORY_ID}/commits"
        params = {k: v[0] for k, v in request.query.items() if k != "page"}
        rels = []
        if page < pages:
            rels.append(("next", page + 1))
        rels.append(("last", pages))
        if page > 1:
            rels += [("first", 1), ("prev", page - 1)]
        return ", ".join(
            f'<{base}?{urlencode({**params, "page": number})}>; rel="{rel}"' for rel, number in rels
        )


def commit_json(commit: Commit) -> dict[str, object]:
    """The fields of GitHub's commit object this project reads, plus a few it must ignore."""
    stamp = iso(commit.committed)
    person = {"name": "Test", "email": "test@example.com", "date": stamp}
    return {
        "sha": commit.sha,
        "node_id": "C_kwDO",
        "commit": {"author": person, "committer": person, "message": "change"},
        "parents": [],
    }


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
