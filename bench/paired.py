"""Warm scenarios against their no-op, per process model, in alternating pairs.

On a shared 2-core machine absolute rates move by 10-30 % from one run to
the next, so every number that matters here is a ratio taken inside one
pair of runs made back to back: the no-op on the same stack and model, then
the scenario. Three such pairs per scenario, median reported. The anchor is
the same no-op Flask app on gunicorn's gthread worker (the stack this
project started on) with the same process model, measured in the same
rounds.

`--against NAME=DIR` adds the no-op and the webhook of another checkout (an
older commit, a trial) to the same rounds, so a change to the shared stack
(the front end) is measured before and after in one run: its no-op moves
too, so those rows are read against the anchor, which no checkout changes.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.servers import Server, running_server

NOOP = "no-op (same stack)"
ANCHOR = "gthread no-op (anchor)"
PASS = "pass-through"  # noqa: S105 - a scenario, not a password
PINNED = "warm pinned"


@dataclass(frozen=True)
class Model:
    name: str
    workers: int
    threads: int


MODELS = (Model("default: 1 worker x 16 threads", 1, 16), Model("2 workers x 8 threads", 2, 8))


@dataclass
class Runs:
    """Every wrk result of one scenario, and its ratio to the no-op run just before it."""

    rates: list[float] = field(default_factory=list)
    p99s: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    errors: int = 0

    def median(self, values: Sequence[float]) -> float:
        return statistics.median(values) if values else 0.0


def servers(
    stack: ExitStack,
    workdir: Path,
    configure: Callable[[Path], dict[str, Any]],
    model: Model,
    against: Mapping[str, Path] | None = None,
) -> Iterator[tuple[str, Server]]:
    """The no-op, the gthread anchor and the webhook, each with the model's workers/threads;
    then the no-op and the webhook of each checkout in `against` (named `<name> @<label>`)."""
    builds: list[tuple[str, Path | None]] = [("", None), *(against or {}).items()]
    for label, root in builds:
        for name, module in (
            (NOOP, ["bench.noop"]),
            (ANCHOR, ["bench.fronts", "gthread"]),
            (PINNED, ["webhook", "serve", "--config"]),
        ):
            if root is not None and name == ANCHOR:
                continue  # one anchor: no checkout changes gunicorn's gthread worker
            tag = f"{name} @{label}" if label else name
            where = workdir / f"{model.workers}x{model.threads}-{name.split()[0]}{label}"
            settings = configure(where)  # ports of its own
            settings["server"].update(workers=model.workers, threads=model.threads)
            env = {"PYTHONPATH": str(root)} if root is not None else None
            yield tag, stack.enter_context(running_server(where, settings, module=module, env=env))


def ratio_table(model: Model, runs: dict[str, Runs]) -> str:
    """One markdown table: median req/s, p99 and paired ratio of each scenario (to the no-op
    of its own checkout), and its ratio to the anchor of the same round."""
    noop, anchor = runs[NOOP], runs[ANCHOR]
    lines = [
        f"{model.name}: median of {len(noop.rates)} alternating pairs",
        "",
        "| scenario | req/s | p99 ms | errors | req/s vs no-op | p99 vs no-op's "
        "| req/s vs anchor |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, result in runs.items():
        own = runs[noop_of(name)]
        noop_p99 = own.median(own.p99s)
        ratio = result.median(result.ratios) if result.ratios else 1.0
        to_anchor = [r / a for r, a in zip(result.rates, anchor.rates, strict=True)]
        lines.append(
            f"| {name} | {result.median(result.rates):.0f} | {result.median(result.p99s):.2f} | "
            f"{result.errors} | {ratio:.2f} | {result.median(result.p99s) / noop_p99:.2f} | "
            f"{statistics.median(to_anchor):.2f} |"
        )
    return "\n".join(lines)


def noop_of(scenario: str) -> str:
    """The no-op of the scenario's own checkout (`... @label` for one run with --against)."""
    _, at, label = scenario.partition(" @")
    return f"{NOOP} @{label}" if at else NOOP
