"""Time one `sha_at` of the git and github config-repo sources (not a test; no assertions).

    .venv/bin/python -m bench.config_history [--commits 1000] [--rounds 200]

git: a real repository of N first-parent commits (one a day, every 20th a merge
of a side branch), built with `git fast-import`, mirrored from its local path.
github: the local stand-in of the commits endpoint over the same history.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from harness.builders import commit
from harness.standins.base import serving
from harness.standins.github import GithubStandIn
from webhook.sources import ConfigHistory
from webhook.sources.git import GitConfigHistory, git_environment
from webhook.sources.github import GithubConfigHistory

START = datetime(2022, 1, 1, tzinfo=UTC)


def build_repository(path: Path, commits: int) -> None:
    """N commits on main, one a day; every 20th merges a one-commit side branch."""
    lines: list[str] = []
    for index in range(1, commits + 1):
        stamp = int((START + timedelta(days=index)).timestamp())
        data = f"change {index}\n"
        if index % 20 == 0:  # a side commit (an hour older) and its merge
            lines += [
                "commit refs/heads/side",
                f"mark :{100000 + index}",
                f"committer T <t@example.com> {stamp - 3600} +0000",
                "data 4",
                "side",
                f"from :{index - 1}",
                f"M 644 inline side.txt\ndata {len(data)}\n{data}",
            ]
        lines += [
            "commit refs/heads/main",
            f"mark :{index}",
            f"committer T <t@example.com> {stamp} +0000",
            f"data {len(data)}",
            data.rstrip("\n"),
        ]
        if index > 1:
            lines.append(f"from :{index - 1}")
        if index % 20 == 0:
            lines.append(f"merge :{100000 + index}")
        lines.append(f"M 644 inline config.txt\ndata {len(data)}\n{data}")
    path.mkdir(parents=True)
    env = git_environment()
    subprocess.run(
        ["git", "init", "--quiet", "--initial-branch=main"], cwd=path, env=env, check=True
    )
    subprocess.run(
        ["git", "fast-import", "--quiet"],
        cwd=path,
        env=env,
        input="\n".join(lines).encode() + b"\n",
        check=True,
    )


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def each(source: ConfigHistory, times: list[datetime]) -> list[float]:
    return [timed(partial(source.sha_at, when)) for when in times]


def report(label: str, samples: list[float]) -> None:
    if len(samples) == 1:
        print(f"{label:<48} {samples[0]:8.2f} ms")
        return
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    print(
        f"{label:<48} median {statistics.median(samples):6.2f} ms  "
        f"p95 {p95:6.2f} ms  (n={len(samples)})"
    )


def random_times(rounds: int, days: int) -> list[datetime]:
    rng = random.Random(42)  # noqa: S311 (reproducible times, not secrets)
    return [START + timedelta(days=rng.uniform(1, days), seconds=1) for _ in range(rounds)]


def bench_git(workdir: Path, commits: int, rounds: int) -> None:
    upstream = workdir / "metric-hub"
    started = time.perf_counter()
    build_repository(upstream, commits)
    count = subprocess.run(
        ["git", "rev-list", "--count", "main"], cwd=upstream, capture_output=True, text=True
    ).stdout.strip()
    print(f"git: built {count} commits in {time.perf_counter() - started:.1f}s")
    source = GitConfigHistory(str(upstream), mirror_dir=workdir / "mirrors", fetch_interval=3600)
    report("git  cold: clone + first sha_at(T)", [timed(lambda: source.sha_at(START))])
    times = random_times(rounds, commits)
    report("git  warm: sha_at(T), T random", each(source, times))
    report("git  warm: sha_at(None)", [timed(lambda: source.sha_at(None)) for _ in range(50)])
    early = START - timedelta(days=30)
    report("git  warm: sha_at(T before every commit)", [timed(lambda: source.sha_at(early))])


def bench_github(commits: int, rounds: int) -> None:
    history = [commit(f"c{i}", (START + timedelta(days=i)).isoformat()) for i in range(commits)]
    route = GithubStandIn(list(reversed(history)))
    with serving(route) as stand_in:
        route.base = stand_in.url
        source = GithubConfigHistory("mozilla/metric-hub", "main", stand_in.url, 2.0)
        source.sha_at(None)  # open the keep-alive connection
        times = random_times(rounds, commits)
        report(
            "github: sha_at(T), T random (1 GET)",
            each(source, times),
        )
        early = START - timedelta(days=30)
        report(
            "github: first sha_at(T before every commit) (3 GETs)",
            [timed(lambda: source.sha_at(early))],
        )
        report(
            "github: later sha_at(T before every commit) (1 GET)",
            [timed(lambda: source.sha_at(early))],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        bench_git(Path(workdir), args.commits, args.rounds)
    bench_github(args.commits, args.rounds)


if __name__ == "__main__":
    main()
