"""The `git` config-repo source against real repositories built here, with chosen commit dates."""

from __future__ import annotations

import copy
import json
import logging
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from harness.builders import JETSTREAM, argo_pod, review_of, utc
from harness.gitrepos import Upstream
from harness.ports import free_port
from harness.servers import example_config, running_server
from tests.support.fakes import NOW, FakeEnrollments, FakeImages, ManualClock
from tests.support.kube import decode_patch
from webhook.admission.admitter import Admitter
from webhook.admission.resolver import ConfigRepo, ImageTarget, Resolver
from webhook.cli import main
from webhook.config import CacheConfig, parse_config
from webhook.core.review import parse_review
from webhook.sources import SourceError
from webhook.sources.cached import CachedConfigHistory
from webhook.sources.git import STAMP, GitConfigHistory
from webhook.wiring import Wiring

CACHE = CacheConfig()  # the resolver takes real sources only behind their cache, as wired


@dataclass
class History:
    """main: A - B - M - C, where M merges side: S1 - S2, branched from A.

    The side commits are older than B, so a date filter over every reachable
    commit (what GitHub's API does) answers S2 for a time between S2 and B;
    the first-parent walk answers A, which is what main really was then.
    """

    upstream: Upstream
    a: str
    s1: str
    s2: str
    b: str
    m: str
    c: str


def build_history(path: Path) -> History:
    up = Upstream(path)
    a = up.commit("A", "2023-01-01T00:00:00Z")
    up.checkout("side", new=True)
    s1 = up.commit("S1", "2023-02-01T00:00:00Z")
    s2 = up.commit("S2", "2023-02-15T00:00:00Z")
    up.checkout("main")
    b = up.commit("B", "2023-03-01T00:00:00Z")
    m = up.merge("side", "2023-04-01T00:00:00Z")
    c = up.commit("C", "2023-05-01T00:00:00Z")
    return History(up, a, s1, s2, b, m, c)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    return build_history(tmp_path_factory.mktemp("upstream") / "metric-hub")


@pytest.fixture(scope="module")
def mirror(history: History, tmp_path_factory: pytest.TempPathFactory) -> GitConfigHistory:
    return GitConfigHistory(
        str(history.upstream.path), mirror_dir=tmp_path_factory.mktemp("mirrors"), timeout=10
    )


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2022-06-01T00:00:00Z", "a"),  # older than every commit: the oldest
        ("2022-12-31T23:59:59Z", "a"),
        ("2023-01-01T00:00:00Z", "a"),  # a commit's own time counts (at or before)
        ("2023-01-31T00:00:00Z", "a"),
        ("2023-02-01T00:00:00Z", "a"),  # S1 exists, but only on the side branch
        ("2023-02-20T00:00:00Z", "a"),  # S2 is the newest reachable commit; main is still A
        ("2023-03-01T00:00:00Z", "b"),
        ("2023-03-31T23:59:59.900Z", "b"),
        ("2023-04-01T00:00:00Z", "m"),
        ("2023-04-01T02:00:00+02:00", "m"),  # the zone does not matter, the instant does
        ("2023-04-30T00:00:00Z", "m"),
        ("2023-05-01T00:00:00Z", "c"),
        ("2031-01-01T00:00:00Z", "c"),
        ("1960-01-01T00:00:00Z", "a"),  # before 1970: still the oldest
    ],
)
def test_first_parent_history(
    mirror: GitConfigHistory, history: History, when: str, expected: str
) -> None:
    assert mirror.sha_at(utc(when)) == getattr(history, expected)


def test_none_is_the_branch_tip(mirror: GitConfigHistory, history: History) -> None:
    assert mirror.sha_at(None) == history.c


def test_side_branch_commits_are_never_chosen(mirror: GitConfigHistory, history: History) -> None:
    # The case is real: a plain date filter (GitHub's `until`) picks the side commit.
    everything = history.upstream.git("rev-list", "-1", "--before=2023-02-20T00:00:00Z", "main")
    assert everything == history.s2
    answers = {mirror.sha_at(utc(f"2023-02-{day:02d}T12:00:00Z")) for day in range(1, 29)}
    assert answers == {history.a}


def test_mirror_is_bare_and_holds_only_the_branch(mirror: GitConfigHistory) -> None:
    mirror.sha_at(None)
    assert (mirror.path / "HEAD").is_file()
    assert not (mirror.path / ".git").exists()
    refs = mirror._git(["for-each-ref", "--format=%(refname)"], 10, cwd=mirror.path).split()
    assert refs == ["refs/heads/main"]
    assert mirror.name == f"git {mirror.fetch_url}@main"


def test_a_fetch_after_the_interval_picks_up_new_commits(tmp_path: Path) -> None:
    up = Upstream(tmp_path / "up")
    first = up.commit("first", "2023-01-01T00:00:00Z")
    clock = ManualClock(time.time())
    source = GitConfigHistory(
        str(up.path), mirror_dir=tmp_path / "m", fetch_interval=60, timeout=10, clock=clock
    )
    assert source.sha_at(None) == first
    second = up.commit("second", "2023-02-01T00:00:00Z")
    clock.advance(59)
    assert source.sha_at(None) == first  # within the interval: no fetch
    clock.advance(2)
    assert source.sha_at(None) == second
    assert source.sha_at(utc("2023-01-15T00:00:00Z")) == first


def test_the_background_thread_fetches_without_lookups(tmp_path: Path) -> None:
    up = Upstream(tmp_path / "up")
    first = up.commit("first", "2023-01-01T00:00:00Z")
    source = GitConfigHistory(str(up.path), mirror_dir=tmp_path / "m", fetch_interval=0.2)
    source.start()
    try:
        assert source.sha_at(None) == first
        second = up.commit("second", "2023-02-01T00:00:00Z")
        deadline = time.monotonic() + 30
        while source.sha_at(None) != second and time.monotonic() < deadline:
            time.sleep(0.05)
        assert source.sha_at(None) == second
    finally:
        source.stop(timeout=10)


def test_the_mirror_keeps_serving_when_the_upstream_disappears(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = build_history(tmp_path / "up")
    clock = ManualClock(time.time())
    source = GitConfigHistory(
        str(history.upstream.path), mirror_dir=tmp_path / "m", timeout=10, clock=clock
    )
    assert source.sha_at(None) == history.c
    shutil.rmtree(history.upstream.path)
    clock.advance(3600)
    with caplog.at_level(logging.WARNING, logger="webhook.sources.git"):
        assert source.sha_at(None) == history.c
        assert source.sha_at(utc("2023-02-20T00:00:00Z")) == history.a
    warnings = [r for r in caplog.records if "serving from the existing mirror" in r.getMessage()]
    assert warnings
    fields: Any = getattr(warnings[0], "fields", {})
    assert fields["source"] == source.name
    assert "cannot fetch" in fields["cause"]
    # A new process (say after a restart, on a persistent volume) serves it too.
    again = GitConfigHistory(str(history.upstream.path), mirror_dir=tmp_path / "m", timeout=10)
    assert again.sha_at(utc("2023-03-15T00:00:00Z")) == history.b


def test_an_unreachable_url_is_a_source_error_without_credentials(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://robot:s3cr3t-t0ken@127.0.0.1:{free_port()}/mozilla/metric-hub.git"
    source = GitConfigHistory(url, mirror_dir=tmp_path / "m", timeout=10)
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as caught:
        source.sha_at(None)
    assert caught.value.source == source.name
    assert "cannot clone http://***@127.0.0.1:" in caught.value.cause
    assert "s3cr3t" not in str(caught.value)
    assert "robot" not in str(caught.value)
    assert "s3cr3t" not in caplog.text
    assert not source.path.exists()
    assert [p.name for p in (tmp_path / "m").iterdir()] == [source.path.name + ".lock"]


def test_a_missing_local_path_is_a_source_error(tmp_path: Path) -> None:
    source = GitConfigHistory(str(tmp_path / "nothing-here"), mirror_dir=tmp_path / "m")
    with pytest.raises(SourceError, match=r"cannot clone .*nothing-here"):
        source.sha_at(utc("2023-01-01T00:00:00Z"))


def test_a_missing_branch_is_a_source_error(history: History, tmp_path: Path) -> None:
    source = GitConfigHistory(str(history.upstream.path), "release", mirror_dir=tmp_path / "m")
    with pytest.raises(SourceError) as caught:
        source.sha_at(None)
    assert caught.value.cause == f"branch release does not exist in {history.upstream.path}"


def test_a_missing_git_program_is_a_source_error(history: History, tmp_path: Path) -> None:
    source = GitConfigHistory(
        str(history.upstream.path), mirror_dir=tmp_path / "m", git=str(tmp_path / "no-git")
    )
    with pytest.raises(SourceError, match=r"the git program \(.*no-git\) is not installed"):
        source.sha_at(None)


def test_an_unusable_mirror_directory_is_a_source_error(history: History, tmp_path: Path) -> None:
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a directory")
    source = GitConfigHistory(str(history.upstream.path), mirror_dir=in_the_way)
    with pytest.raises(SourceError, match=f"cannot use mirror directory {in_the_way}: "):
        source.sha_at(None)


def test_a_hanging_git_is_killed_at_the_timeout(history: History, tmp_path: Path) -> None:
    hanging = tmp_path / "slow-git"
    hanging.write_text("#!/bin/sh\nsleep 60 &\nexec sleep 60\n")  # a helper holds the pipe too
    hanging.chmod(hanging.stat().st_mode | stat.S_IXUSR)
    source = GitConfigHistory(
        str(history.upstream.path),
        mirror_dir=tmp_path / "m",
        timeout=0.5,
        fetch_timeout=0.5,
        git=str(hanging),
    )
    with pytest.raises(SourceError, match=r"git init timed out after 0\.5s"):
        source.sha_at(None)


def test_a_background_clone_failure_is_reported_by_lookups(tmp_path: Path) -> None:
    source = GitConfigHistory(str(tmp_path / "gone"), mirror_dir=tmp_path / "m", timeout=0.2)
    source.start()
    try:
        deadline = time.monotonic() + 30
        cause = ""
        while "no mirror yet" not in cause and time.monotonic() < deadline:
            with pytest.raises(SourceError) as caught:
                source.sha_at(None)
            cause = caught.value.cause
        assert cause.startswith("no mirror yet: cannot clone ")
        assert "retrying every 10s" in cause
    finally:
        source.stop(timeout=10)


def test_workers_share_one_mirror(history: History, tmp_path: Path) -> None:
    url = str(history.upstream.path)
    workers = [GitConfigHistory(url, mirror_dir=tmp_path / "m", timeout=10) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        assert {w.sha_at(utc("2023-03-02T00:00:00Z")) for w in workers} == {history.b}
    finally:
        for worker in workers:
            worker.stop(timeout=10)
    mirrors = [p for p in (tmp_path / "m").iterdir() if p.suffix == ".git"]
    assert mirrors == [workers[0].path]
    assert (workers[0].path / STAMP).is_file()


def test_a_leftover_without_stamp_is_replaced(history: History, tmp_path: Path) -> None:
    source = GitConfigHistory(str(history.upstream.path), mirror_dir=tmp_path / "m", timeout=10)
    source.path.mkdir(parents=True)
    (source.path / "garbage").write_text("an interrupted clone")
    assert source.sha_at(None) == history.c
    assert not (source.path / "garbage").exists()


# Resolution through the real source


def admit_slug(config_history: GitConfigHistory, enrolled: dict[str, Any]) -> dict[str, Any]:
    resolver = Resolver(
        [ImageTarget(JETSTREAM, "breaking", FakeImages())],
        FakeEnrollments(enrolled=enrolled),
        [ConfigRepo("metric-hub", "METRIC_HUB_SHA", CachedConfigHistory(config_history, CACHE))],
        now=lambda: NOW,
    )
    admitter = Admitter(resolver, {"metric-hub": "METRIC_HUB_SHA"})
    review = review_of(argo_pod("my-experiment"))
    result = admitter.admit(parse_review(review))
    pod: dict[str, Any] = jsonpatch.apply_patch(
        copy.deepcopy(review["request"]["object"]), decode_patch(result.response)
    )
    return pod


def metric_hub_env(pod: dict[str, Any]) -> str:
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][1]["env"]}
    return str(env["METRIC_HUB_SHA"])


@pytest.mark.parametrize(
    ("enrolled", "expected"),
    [
        ("2023-02-20T00:00:00Z", "a"),  # during the side branch's life: main's tip, not S2
        ("2023-03-15T00:00:00Z", "b"),
        ("2022-01-01T00:00:00Z", "a"),
        (None, "c"),  # not enrolled: the newest commit
    ],
)
def test_admission_pins_metric_hub_through_the_git_mirror(
    mirror: GitConfigHistory, history: History, enrolled: str | None, expected: str
) -> None:
    when = utc(enrolled) if enrolled else None
    pod = admit_slug(mirror, {"my-experiment": when})
    assert metric_hub_env(pod) == getattr(history, expected)
    assert pod["metadata"]["annotations"]["jetstream/metric-hub-sha"] == metric_hub_env(pod)


def git_config(history: History, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    config = example_config(tmp_path)
    config["configRepos"] = [
        {
            "name": "metric-hub",
            "env": "METRIC_HUB_SHA",
            "history": {
                "type": "git",
                "url": str(history.upstream.path),
                "mirrorDir": str(tmp_path / "mirrors"),
                "fetchIntervalSeconds": 30,
                **extra,
            },
        }
    ]
    return config


def test_wiring_builds_the_git_source_and_starts_it_after_the_fork(
    history: History, tmp_path: Path
) -> None:
    wiring = Wiring(parse_config(git_config(history, tmp_path), tmp_path))
    wiring.start_background()  # what each server worker does
    try:
        [mirror] = wiring.background
        assert isinstance(mirror, GitConfigHistory)
        assert mirror.fetch_interval == 30
        assert mirror.path.parent == tmp_path / "mirrors"
        assert mirror._thread is not None
        answer = wiring.resolver.config_repos[0].history.sha_at(utc("2023-03-15T00:00:00Z"))
        assert answer == history.b
    finally:
        for part in wiring.background:
            assert isinstance(part, GitConfigHistory)
            part.stop(timeout=10)


def test_explain_answers_from_the_git_mirror(
    history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(json.dumps(git_config(history, tmp_path)))
    slug = "android-onboarding-notification-permission-v2"  # enrolled 2023-12-01 in the data
    assert main(["explain", "--config", str(config_file), "--slug", slug, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["configRepos"] == [
        {"name": "metric-hub", "env": "METRIC_HUB_SHA", "sha": history.c}
    ]


def test_the_https_server_pins_from_a_git_mirror(history: History, tmp_path: Path) -> None:
    """gunicorn workers start their mirror threads after the fork and answer from them."""
    with running_server(tmp_path, git_config(history, tmp_path)) as server:
        review = review_of(argo_pod("my-experiment"))  # enrolled 2023-01-01 in the data
        reply = server.post_review(review)
        assert reply.status_code == 200, reply.text
        assert reply.json()["response"]["allowed"] is True, reply.text
        pod = jsonpatch.apply_patch(review["request"]["object"], decode_patch(reply.json()))
        assert metric_hub_env(pod) == history.a
