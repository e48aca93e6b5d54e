"""Config-repo history from GitHub's REST API: the branch's newest commit at a time.

One `GET /repos/{owner}/{repo}/commits?sha=BRANCH&until=T&per_page=1` answers
a lookup. GitHub filters every commit reachable from the branch by committer
date, which is not a first-parent walk: see docs/configuration.md ("Config-repo history
sources") for what that means for merge commits. When no commit is that old,
the oldest commit is found through the `rel="last"` page of the unfiltered
list and remembered, since it never changes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from webhook.core.pinning import is_commit_sha
from webhook.sources import SourceError
from webhook.sources.http import HttpClient, describe_status, host_of, parse_json

PUBLIC_API = "https://api.github.com"
HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
# GitHub: "timestamps must be between 1970-01-01 and 2099-12-31 (inclusive)".
_FIRST = datetime(1970, 1, 1, tzinfo=UTC)
_LAST = datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)


class GithubToken:
    """A token from a file (re-read when the file changes, e.g. a rotated Secret) or an env var."""

    def __init__(self, source: str, file: Path | None = None, env: str | None = None) -> None:
        if (file is None) == (env is None):
            raise ValueError("give exactly one of file and env")
        self.source = source
        self.file = file
        self.env = env
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._token = ""

    def value(self) -> str:
        if self.env is not None:
            token = os.environ.get(self.env, "").strip()
            if not token:
                raise SourceError(self.source, f"environment variable {self.env} is empty or unset")
            return token
        assert self.file is not None
        with self._lock:
            try:
                stat = self.file.stat()
                seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
                if seen != self._seen:
                    self._token = self.file.read_text(encoding="utf-8").strip()
                    self._seen = seen
            except (OSError, UnicodeDecodeError) as err:
                reason = getattr(err, "strerror", None) or type(err).__name__
                raise SourceError(
                    self.source, f"cannot read token file {self.file}: {reason}"
                ) from None
            if not self._token:
                raise SourceError(self.source, f"token file {self.file} is empty")
            return self._token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.value()}"}


class GithubConfigHistory:
    def __init__(
        self,
        repo: str,
        branch: str = "main",
        endpoint: str | None = None,
        timeout: float = 2.0,
        token_file: Path | None = None,
        token_env: str | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.name = f"github {repo}@{branch}"
        self.repo = repo
        self.branch = branch
        token = None
        if token_file is not None or token_env is not None:
            token = GithubToken(self.name, token_file, token_env)
            token.value()  # fail at start, not on the first pod, when it cannot be read
        self.client = HttpClient(
            self.name,
            endpoint or PUBLIC_API,
            timeout,
            auth=token.headers if token is not None else None,
            session=session,
        )
        self._oldest: str | None = None
        self._oldest_lock = threading.Lock()

    @property
    def path(self) -> str:
        return f"repos/{self.repo}/commits"

    def sha_at(self, when: datetime | None) -> str:
        params: dict[str, Any] = {"sha": self.branch, "per_page": 1}
        if when is not None:
            params["until"] = rfc3339(when)
        commits = self._commits(self.path, params)
        if commits:
            return commits[0]
        if when is None:
            raise SourceError(self.name, f"branch {self.branch} has no commits")
        return self.oldest()

    def oldest(self) -> str:
        """The branch's first commit: the single item of the list's last page of size one."""
        with self._oldest_lock:
            if self._oldest is None:
                self._oldest = self._find_oldest()
            return self._oldest

    def _find_oldest(self) -> str:
        params = {"sha": self.branch, "per_page": 1}
        response = self._get(self.path, params)
        last = response.links.get("last", {}).get("url")
        if not last:  # a single page: the newest commit is also the oldest
            return self._first(response)
        if host_of(last) != host_of(self.client.base_url):
            raise SourceError(
                self.name, f"paging link of {host_of(self.client.base_url)} points to another host"
            )
        return self._first(self._get(last))

    def _commits(self, path: str, params: Mapping[str, Any] | None = None) -> list[str]:
        return self._shas(self._get(path, params))

    def _first(self, response: requests.Response) -> str:
        shas = self._shas(response)
        if not shas:
            raise SourceError(self.name, f"branch {self.branch} has no commits")
        return shas[0]

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> requests.Response:
        response = self.client.get(path, params, HEADERS, ok=(200, 403, 404, 409, 422, 429))
        if response.status_code != 200:
            raise SourceError(self.name, self._refusal(response))
        return response

    def _refusal(self, response: requests.Response) -> str:
        where = host_of(response.url or self.client.base_url)
        code = response.status_code
        if code == 429 or (code == 403 and response.headers.get("X-RateLimit-Remaining") == "0"):
            reset = response.headers.get("X-RateLimit-Reset", "")
            until = ""
            if reset.isdigit():
                until = f" until {rfc3339(datetime.fromtimestamp(int(reset), UTC))}"
            return f"HTTP {code} from {where}: rate limited{until}"
        if code in (404, 422):
            return (
                f"HTTP {code} from {where}: repository {self.repo} or branch {self.branch} "
                "not found (or not visible to the token)"
            )
        if code == 409:
            return f"HTTP 409 from {where}: repository {self.repo} is empty"
        return describe_status(response)

    def _shas(self, response: requests.Response) -> list[str]:
        body = parse_json(self.name, response)
        if not isinstance(body, list):
            raise self._malformed(response, "expected a list of commits")
        shas: list[str] = []
        for item in body:
            sha = item.get("sha") if isinstance(item, dict) else None
            if not isinstance(sha, str) or not is_commit_sha(sha):
                raise self._malformed(response, "a commit without a 40 or 64 hex 'sha'")
            shas.append(sha)
        return shas

    def _malformed(self, response: requests.Response, what: str) -> SourceError:
        where = host_of(response.url or self.client.base_url)
        return SourceError(self.name, f"malformed answer from {where}: {what}")


def rfc3339(when: datetime) -> str:
    """UTC, whole seconds (commit times have none), within the years GitHub documents."""
    if when.tzinfo is None:
        raise ValueError("a time without a zone is ambiguous")
    clamped = min(max(when.astimezone(UTC), _FIRST), _LAST)
    return clamped.strftime("%Y-%m-%dT%H:%M:%SZ")
