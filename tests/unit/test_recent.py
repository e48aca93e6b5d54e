"""Recent decisions: recorded per worker process, read across all of them, bounded."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from harness.builders import ROOT, argo_pod, review_of, utc
from tests.support.fakes import World
from webhook.core.review import parse_review
from webhook.insight.recent import RecentDecision, RecentDecisions, from_result

T0 = utc("2026-11-28T10:00:00Z")


def entry(n: int, slug: str = "my-experiment") -> RecentDecision:
    return RecentDecision(T0 + timedelta(seconds=n), slug, "patched", "enrollment", ("img",))


def test_in_memory_log_keeps_the_newest_first() -> None:
    log = RecentDecisions(None, keep=3)
    for n in range(5):
        log.record(entry(n))
    assert [e.time for e in log.recent()] == [entry(n).time for n in (4, 3, 2)]
    assert len(log.recent(limit=2)) == 2


def test_file_is_bounded_and_readers_see_the_newest(tmp_path: Path) -> None:
    log = RecentDecisions(tmp_path, keep=5, pid=lambda: 101)
    for n in range(33):
        log.record(entry(n))
        log.flush()
        (file,) = tmp_path.glob("decisions-*.jsonl")
        assert len(file.read_text().splitlines()) < 10
    assert file.name == "decisions-101.jsonl"
    assert file.stat().st_mode & 0o777 == 0o600
    reader = RecentDecisions(tmp_path, keep=5, pid=lambda: 999)
    assert [e.time for e in reader.recent(limit=5)] == [entry(n).time for n in range(32, 27, -1)]


def test_every_worker_process_is_seen(tmp_path: Path) -> None:
    """Two real processes record; a third object (any worker serving the page) reads both."""
    script = (
        "import sys; from datetime import datetime, UTC; from pathlib import Path\n"
        "from webhook.insight.recent import RecentDecisions, RecentDecision\n"
        "log = RecentDecisions(Path(sys.argv[1]))\n"
        "for n in range(3):\n"
        "    log.record(RecentDecision(datetime.now(UTC), f'{sys.argv[2]}-{n}', 'patched',"
        " 'enrollment', ()))\n"
    )
    for worker in ("first", "second"):
        subprocess.run([sys.executable, "-c", script, str(tmp_path), worker], cwd=ROOT, check=True)
    slugs = {e.slug for e in RecentDecisions(tmp_path).recent()}
    assert slugs == {f"{w}-{n}" for w in ("first", "second") for n in range(3)}


def test_a_torn_or_foreign_line_is_skipped(tmp_path: Path) -> None:
    log = RecentDecisions(tmp_path, pid=lambda: 7)
    log.record(entry(1))
    with (tmp_path / "decisions-7.jsonl").open("a") as handle:
        handle.write(json.dumps({"time": "yesterday"}) + "\n")
        handle.write('["not", "an", "entry"]\n')
        handle.write('{"time": "2026-11-28T10:00:00", "slug": "no zone"}\n')
        handle.write('{"time":"2026-11-28T10:00:09+00:00","slug":"half')
    assert [e.slug for e in log.recent()] == ["my-experiment"]


def test_a_dead_workers_file_is_adopted_once(tmp_path: Path) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(finished.stdout)
    orphan = RecentDecisions(tmp_path, pid=lambda: dead_pid)
    orphan.record(entry(1, "from-the-dead-worker"))
    orphan.flush()
    log = RecentDecisions(tmp_path, pid=lambda: 4242)
    log.record(entry(2, "new"))
    log.flush()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decisions-4242.jsonl"]
    assert [e.slug for e in log.recent()] == ["new", "from-the-dead-worker"]


def test_fields_are_bounded() -> None:
    log = RecentDecisions(None)
    log.record(
        RecentDecision(T0, "s" * 5000, "patched", "enrollment", ("i" * 5000,) * 50, detail="d" * 9)
    )
    (got,) = log.recent()
    assert len(got.slug) == 256
    assert got.slug.endswith("...")
    assert len(got.images) == 8
    assert all(len(i) <= 300 for i in got.images)


@pytest.mark.parametrize(
    ("pod", "dry_run", "outcome", "reason"),
    [
        (argo_pod("my-experiment"), False, "patched", "enrollment"),
        (argo_pod("my-experiment"), True, None, None),
        (argo_pod(None), False, None, None),  # no slug: pass-through, not an experiment pod
        (
            argo_pod("x", labels={"jetstream/experiment-slug": "<script>alert(1)</script>"}),
            False,
            "refused",
            "",
        ),
    ],
    ids=["patched", "dry run", "pass-through", "refused"],
)
def test_what_gets_recorded(
    pod: dict[str, object], dry_run: bool, outcome: str | None, reason: str | None
) -> None:
    request = parse_review(review_of(pod, dry_run=dry_run))
    result = World().admitter().admit(request)
    recorded = from_result(request, result, T0)
    if outcome is None:
        assert recorded is None
        return
    assert recorded is not None
    assert (recorded.outcome, recorded.reason) == (outcome, reason)
    assert recorded.namespace == "argo"
    if outcome == "refused":
        assert recorded.slug == "<script>alert(1)</script>"
        assert "is not valid" in recorded.detail
        assert recorded.images == ()
    else:
        assert recorded.images[0].startswith("gcr.io/moz-fx-data-experiments/jetstream@sha256:")


def test_recording_never_fails_an_admission(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gone = tmp_path / "removed"
    log = RecentDecisions(gone)
    request = parse_review(review_of(argo_pod("my-experiment")))
    with caplog.at_level(logging.ERROR):
        log.record_result(request, World().admitter().admit(request))  # does not raise
        deadline = time.monotonic() + 10
        while "cannot write the recent decisions" not in caplog.text:
            assert time.monotonic() < deadline, "the background writer never reported"
            time.sleep(0.05)


def test_recording_is_written_in_the_background(tmp_path: Path) -> None:
    log = RecentDecisions(tmp_path, pid=lambda: 55, flush_every=0.05)
    log.record(entry(1))
    deadline = time.monotonic() + 10
    while not (tmp_path / "decisions-55.jsonl").exists():
        assert time.monotonic() < deadline, "the background writer never wrote"
        time.sleep(0.02)
    assert "my-experiment" in (tmp_path / "decisions-55.jsonl").read_text()


def test_a_failed_write_is_retried_until_it_succeeds(tmp_path: Path) -> None:
    """A full or read-only directory: recent() says so (OSError), and nothing recorded
    meanwhile is lost once writes work again."""
    directory = tmp_path / "decisions"
    log = RecentDecisions(directory, pid=lambda: 77, flush_every=3600)
    log.record(entry(1))
    with pytest.raises(FileNotFoundError):
        log.recent()
    with pytest.raises(FileNotFoundError):
        log.recent()  # still failing: the entries still wait to be written
    directory.mkdir()
    assert [e.slug for e in log.recent()] == ["my-experiment"]
