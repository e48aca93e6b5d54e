"""The `github` config-repo source against a local stand-in of GitHub's commits endpoint."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from harness.builders import JETSTREAM, argo_pod, commit, review_of, utc
from harness.standins.base import Reply, StandInServer, json_reply, serving
from harness.standins.github import GithubStandIn
from tests.support.fakes import NOW, FakeEnrollments, FakeImages
from tests.support.kube import decode_patch
from webhook.admission.admitter import Admitter
from webhook.admission.resolver import ConfigRepo, ImageTarget, Resolver
from webhook.config import CacheConfig, ConfigError, parse_config
from webhook.core.review import parse_review
from webhook.sources import SourceError
from webhook.sources.cached import CachedConfigHistory
from webhook.sources.github import GithubConfigHistory
from webhook.wiring import Wiring

CACHE = CacheConfig()  # the resolver takes real sources only behind their cache, as wired

ROOT = commit("root", "2022-10-13T20:59:29Z")
JAN = commit("jan", "2023-01-10T00:00:00Z")
FEB = commit("feb", "2023-02-01T00:00:00Z")
MAR = commit("mar", "2023-03-05T12:00:00Z")
NEWEST_FIRST = [MAR, FEB, JAN, ROOT]
NAME = "github mozilla/metric-hub@main"
TOKEN = "ghp_s3cretT0ken"


@pytest.fixture
def github() -> Iterator[tuple[StandInServer, GithubStandIn]]:
    route = GithubStandIn(NEWEST_FIRST)
    with serving(route) as stand_in:
        route.base = stand_in.url
        yield stand_in, route


def source(stand_in: StandInServer, **options: Any) -> GithubConfigHistory:
    return GithubConfigHistory("mozilla/metric-hub", "main", stand_in.url, 2.0, **options)


def test_one_call_with_branch_until_and_page_size(
    github: tuple[StandInServer, GithubStandIn],
) -> None:
    stand_in, _ = github
    assert source(stand_in).sha_at(utc("2023-02-20T08:30:00.75+00:00")) == FEB.sha
    [call] = stand_in.calls()
    assert call.path == "/repos/mozilla/metric-hub/commits"
    assert call.query == {"sha": ["main"], "until": ["2023-02-20T08:30:00Z"], "per_page": ["1"]}
    assert call.headers["accept"] == "application/vnd.github+json"
    assert call.headers["x-github-api-version"] == "2022-11-28"
    assert call.headers["user-agent"] == "jetstream-pin"
    assert "authorization" not in call.headers


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2023-01-10T00:00:00Z", JAN),  # a commit's own time counts
        ("2023-01-09T23:59:59Z", ROOT),
        ("2023-02-01T00:00:00+01:00", JAN),  # an hour earlier in UTC
        ("2023-03-05T12:00:00Z", MAR),
        ("2030-01-01T00:00:00Z", MAR),
    ],
)
def test_answers(github: tuple[StandInServer, GithubStandIn], when: str, expected: Any) -> None:
    stand_in, _ = github
    assert source(stand_in).sha_at(utc(when)) == expected.sha


def test_none_is_the_branch_tip(github: tuple[StandInServer, GithubStandIn]) -> None:
    stand_in, _ = github
    assert source(stand_in).sha_at(None) == MAR.sha
    assert stand_in.calls()[0].query == {"sha": ["main"], "per_page": ["1"]}


def test_too_early_is_the_oldest_commit_through_the_last_page_once(
    github: tuple[StandInServer, GithubStandIn],
) -> None:
    stand_in, _ = github
    history = source(stand_in)
    assert history.sha_at(utc("2020-01-01T00:00:00Z")) == ROOT.sha
    until, first_page, last_page = stand_in.calls()
    assert until.param("until") == "2020-01-01T00:00:00Z"
    assert first_page.query == {"sha": ["main"], "per_page": ["1"]}
    assert last_page.path == "/repositories/519/commits"
    assert last_page.query == {"sha": ["main"], "per_page": ["1"], "page": ["4"]}
    # The oldest commit never changes: later misses cost one call.
    assert history.sha_at(utc("2021-06-01T00:00:00Z")) == ROOT.sha
    assert len(stand_in.calls()) == 4


def test_a_single_commit_has_no_paging_link(github: tuple[StandInServer, GithubStandIn]) -> None:
    stand_in, route = github
    route.commits = [ROOT]
    assert source(stand_in).sha_at(utc("2020-01-01T00:00:00Z")) == ROOT.sha
    assert len(stand_in.calls()) == 2


def test_github_enterprise_endpoint_with_a_path() -> None:
    route = GithubStandIn(NEWEST_FIRST, prefix="/api/v3")
    with serving(route) as stand_in:
        route.base = stand_in.url
        history = GithubConfigHistory("mozilla/metric-hub", "main", f"{stand_in.url}/api/v3")
        assert history.sha_at(utc("2023-02-02T00:00:00Z")) == FEB.sha
        assert history.sha_at(utc("2000-01-01T00:00:00Z")) == ROOT.sha
    assert [c.path for c in stand_in.calls()] == [
        "/api/v3/repos/mozilla/metric-hub/commits",
        "/api/v3/repos/mozilla/metric-hub/commits",
        "/api/v3/repos/mozilla/metric-hub/commits",
        "/api/v3/repositories/519/commits",
    ]


def test_token_file_is_sent_stripped_and_reread_when_it_changes(
    github: tuple[StandInServer, GithubStandIn], tmp_path: Path
) -> None:
    stand_in, _ = github
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}\n")
    history = source(stand_in, token_file=token_file)
    history.sha_at(None)
    assert stand_in.calls()[-1].headers["authorization"] == f"Bearer {TOKEN}"
    # Kubernetes rotates a mounted Secret by swapping in a new file.
    rotated = tmp_path / "token.new"
    rotated.write_text("ghp_rotated\n")
    os.replace(rotated, token_file)
    history.sha_at(None)
    assert stand_in.calls()[-1].headers["authorization"] == "Bearer ghp_rotated"
    # Rewritten in place with the same size: the modification time tells.
    token_file.write_text("ghp_rotat3d\n")
    stamp = token_file.stat().st_mtime_ns + 1_000_000
    os.utime(token_file, ns=(stamp, stamp))
    history.sha_at(None)
    assert stand_in.calls()[-1].headers["authorization"] == "Bearer ghp_rotat3d"


def test_token_from_the_environment(
    github: tuple[StandInServer, GithubStandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in, _ = github
    monkeypatch.setenv("METRIC_HUB_TOKEN", f"{TOKEN}\n")
    source(stand_in, token_env="METRIC_HUB_TOKEN").sha_at(None)
    assert stand_in.calls()[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_the_token_goes_only_to_the_endpoint_host(
    github: tuple[StandInServer, GithubStandIn], tmp_path: Path
) -> None:
    stand_in, route = github
    with serving(lambda request: json_reply([])) as elsewhere:
        route.link_base = elsewhere.url  # a paging link that leaves the configured host
        token_file = tmp_path / "token"
        token_file.write_text(TOKEN)
        history = source(stand_in, token_file=token_file)
        with pytest.raises(SourceError) as caught:
            history.sha_at(utc("2020-01-01T00:00:00Z"))
        assert caught.value.cause == f"paging link of {stand_in.url} points to another host"
        assert elsewhere.calls() == []
    assert all(c.headers["authorization"] == f"Bearer {TOKEN}" for c in stand_in.calls())


def test_unreadable_token_is_refused_at_start_then_reported_per_lookup(
    github: tuple[StandInServer, GithubStandIn], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in, _ = github
    missing = tmp_path / "absent"
    with pytest.raises(SourceError, match=f"cannot read token file {missing}: No such file"):
        source(stand_in, token_file=missing)
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    with pytest.raises(SourceError, match="environment variable NO_SUCH_TOKEN is empty or unset"):
        source(stand_in, token_env="NO_SUCH_TOKEN")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    history = source(stand_in, token_file=token_file)
    token_file.write_text("\n")
    with pytest.raises(SourceError, match=f"token file {token_file} is empty"):
        history.sha_at(None)
    token_file.unlink()
    with pytest.raises(SourceError, match="cannot read token file"):
        history.sha_at(None)


RATE_LIMITED = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000000"}


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (json_reply({"message": "Bad credentials"}, 401), "HTTP 401 from .*: not authorized"),
        (
            json_reply({"message": "API rate limit exceeded"}, 403, **RATE_LIMITED),
            "HTTP 403 from .*: rate limited until 2023-11-14T22:13:20Z",
        ),
        (json_reply({}, 429), "HTTP 429 from .*: rate limited"),
        (
            json_reply({"message": "Not Found"}, 404),
            "HTTP 404 from .*: repository mozilla/metric-hub or branch main not found",
        ),
        (json_reply({"message": "Git Repository is empty."}, 409), "is empty"),
        (Reply(302, b"", {"Location": "http://127.0.0.2:1/"}), "unexpected redirect"),
        (json_reply({"sha": "0" * 40}), "malformed answer from .*: expected a list of commits"),
        (json_reply([{"commit": {}}]), "malformed answer from .*: a commit without a 40 or 64"),
        (json_reply([{"sha": "not-hex"}]), "a commit without a 40 or 64 hex 'sha'"),
        (json_reply([{"sha": "A" * 40}]), "a commit without"),
        (json_reply([42]), "a commit without"),
        (json_reply({"message": TOKEN}, 500), "HTTP 500"),  # a body is never echoed
    ],
)
def test_fault_matrix(
    github: tuple[StandInServer, GithubStandIn], tmp_path: Path, fault: Reply, cause: str
) -> None:
    stand_in, _ = github
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    history = GithubConfigHistory(
        "mozilla/metric-hub", "main", stand_in.url, 0.3, token_file=token_file
    )
    stand_in.fault = fault
    with pytest.raises(SourceError, match=cause) as caught:
        history.sha_at(utc("2023-02-01T00:00:00Z"))
    assert caught.value.source == NAME
    assert str(caught.value).startswith(f"{NAME}: ")
    assert TOKEN not in str(caught.value)


def test_an_unknown_branch_is_not_found(github: tuple[StandInServer, GithubStandIn]) -> None:
    stand_in, _ = github
    history = GithubConfigHistory("mozilla/metric-hub", "release", stand_in.url)
    with pytest.raises(SourceError, match="repository mozilla/metric-hub or branch release"):
        history.sha_at(None)


# Through the wiring and the admission handler


def github_config(stand_in: StandInServer, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "images": [{"repository": JETSTREAM, "history": {"type": "static"}}],
        "enrollments": {"type": "static"},
        "static": str(Path(__file__).resolve().parents[2] / "examples" / "static-data.yaml"),
        "configRepos": [
            {
                "name": "metric-hub",
                "history": {
                    "type": "github",
                    "repo": "mozilla/metric-hub",
                    "endpoint": stand_in.url,
                    "timeoutSeconds": 1.5,
                    **extra,
                },
            }
        ],
    }
    return config


def test_wiring_builds_the_github_source(
    github: tuple[StandInServer, GithubStandIn], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in, _ = github
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    config = parse_config(github_config(stand_in, tmp_path, tokenEnv="GH_TOKEN"), tmp_path)
    wiring = Wiring(config)
    history = wiring.config_history(config.config_repos[0])
    assert isinstance(history, GithubConfigHistory)
    assert history.name == NAME
    assert history.client.timeout == 1.5
    assert wiring.resolver.config_repos[0].history.sha_at(None) == MAR.sha
    assert stand_in.calls()[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert wiring.background == []


def test_wiring_refuses_to_start_without_the_token(
    github: tuple[StandInServer, GithubStandIn], tmp_path: Path
) -> None:
    stand_in, _ = github
    config = parse_config(github_config(stand_in, tmp_path, tokenFile="missing"), tmp_path)
    with pytest.raises(ConfigError, match=f"configRepos: {NAME}: cannot read token file"):
        Wiring(config).resolver  # noqa: B018


@pytest.mark.parametrize(
    ("enrolled", "expected"),
    [("2023-02-20T00:00:00Z", FEB), ("2019-01-01T00:00:00Z", ROOT), (None, MAR)],
)
def test_admission_pins_metric_hub_through_github(
    github: tuple[StandInServer, GithubStandIn], enrolled: str | None, expected: Any
) -> None:
    stand_in, _ = github
    resolver = Resolver(
        [ImageTarget(JETSTREAM, "breaking", FakeImages())],
        FakeEnrollments(enrolled={"my-experiment": utc(enrolled) if enrolled else None}),
        [ConfigRepo("metric-hub", "METRIC_HUB_SHA", CachedConfigHistory(source(stand_in), CACHE))],
        now=lambda: NOW,
    )
    review = review_of(argo_pod("my-experiment"))
    result = Admitter(resolver, {"metric-hub": "METRIC_HUB_SHA"}).admit(parse_review(review))
    pod = jsonpatch.apply_patch(
        copy.deepcopy(review["request"]["object"]), decode_patch(result.response)
    )
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][1]["env"]}
    assert env["METRIC_HUB_SHA"] == expected.sha
