"""CPU per review of the loop-side handler, side effects and all, against the no-op's.

`python -m bench.costs` (PYTHONPATH at the repository): the warm pinned and
pass-through reviews of `scripts/bench` through the dispatch table's loop path with
everything the server has (multiprocess metrics files, the batching log
writer on a real file, the recent decisions file and its flusher), against
`NoopRoutes` on the same bodies. CPU time of every thread of this
process (`time.process_time`), so work moved to the writer threads still
counts. No TLS and no HTTP: this is what a review costs beyond the wire,
the part the wrk benchmark cannot take apart. Then the pinned path with
one side effect switched off at a time, to show what each one costs.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bench.noop import NoopRoutes
from bench.run import FIXTURES, backends, pass_through
from harness.builders import fixture_review
from harness.servers import remote_config
from webhook import logs, metrics
from webhook.admission import handler
from webhook.config import load_config
from webhook.serving.dispatch import Dispatch
from webhook.serving.httpwire import Head
from webhook.serving.routes import ADMISSION, HttpReply, Request, Routes
from webhook.wiring import Wiring

Inline = Callable[[Head, bytes, float], HttpReply | None]


def on_loop(routes: Routes) -> Inline:
    """What the front end does with a complete review: its route, answered on the loop."""

    def answer(head: Head, body: bytes, arrived: float) -> HttpReply | None:
        request = Request(ADMISSION, 8443, head, body, ("127.0.0.1", 1), arrived)
        route = routes.route(request)
        return route.on_loop(request, 0.0) if route.on_loop is not None else None

    return answer


def cpu_per_call(
    inline: Inline, heads: list[Head], bodies: list[bytes], runs: int, evict: bytearray | None
) -> float:
    """Microseconds of process CPU per review, the writer threads' catch-up included.

    `evict`: a buffer written one byte per 64-byte line before every review,
    so each starts with cold CPU caches as in a server between reviews; its
    own cost is in every path alike, so the differences stay comparable.
    """
    for head, body in zip(heads, bodies, strict=True):
        if inline(head, body, time.monotonic()) is None:
            raise RuntimeError("the review was not answered on the loop path")
    lines = b"\x01" * (len(evict) // 64) if evict is not None else b""
    started = time.process_time()
    for n in range(runs):
        k = n % len(bodies)
        if evict is not None:
            evict[::64] = lines
        inline(heads[k], bodies[k], time.monotonic())
    time.sleep(0.5)  # the log writer and the decisions flusher finish their share
    spent = time.process_time() - started
    idle = time.process_time()
    time.sleep(0.5)
    spent -= time.process_time() - idle  # what the threads cost when there is nothing to do
    return spent / runs * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000, help="reviews per round")
    parser.add_argument("--repeats", type=int, default=9, help="interleaved rounds")
    parser.add_argument("--evict-kib", type=int, default=0,
                        help="touch this much memory before each review (cold caches)")  # fmt: skip
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="jetstream-pin-costs-"))
    metrics.enable_multiprocess(workdir / "metrics")
    log_file = (workdir / "log.jsonl").open("w")
    sys.stderr, stderr = log_file, sys.stderr
    logs.configure()
    sys.stderr = stderr
    (workdir / "decisions").mkdir()

    with backends(250) as (bigquery, _registry, registry):
        assert bigquery.stand_in is not None
        config = remote_config(workdir, bigquery.stand_in.url, registry.url, prefetch=True)
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        wiring = Wiring(load_config(workdir / "config.yaml"), decisions_dir=workdir / "decisions")
        _measure(args, wiring)
    logging.getLogger().handlers[0].close()  # the log writer's last batch, then the file
    log_file.close()
    return 0


def _measure(args: argparse.Namespace, wiring: Wiring) -> None:
    loaded = on_loop(Dispatch(wiring.admitter, recorder=wiring.recent_decisions))
    quiet = on_loop(Dispatch(wiring.admitter, recorder=None))
    reviews = [fixture_review(name) for name in FIXTURES]
    pinned = [json.dumps(r).encode() for r in reviews]
    passing = [json.dumps(pass_through(r)).encode() for r in reviews]
    for body in pinned:  # outside the loop path, so the caches load
        handler.mutate(wiring.admitter, None, "application/json", body, time.monotonic())
    heads = [Head("POST", "/mutate", "HTTP/1.1", {"content-type": "application/json",
                                                  "content-length": str(len(b))})
             for b in pinned]  # fmt: skip
    decisions = logging.getLogger("webhook.decisions")

    def unlogged(head: Head, body: bytes, arrived: float) -> HttpReply | None:
        decisions.disabled = True
        try:
            return loaded(head, body, arrived)
        finally:
            decisions.disabled = False

    paths: list[tuple[str, Inline, list[bytes]]] = [
        ("no-op (bench.noop's loop path)", on_loop(NoopRoutes()), pinned),
        ("pass-through", loaded, passing),
        ("warm pinned", loaded, pinned),
        ("warm pinned, no recent decisions", quiet, pinned),
        ("warm pinned, no decision log line", unlogged, pinned),
    ]
    values: dict[str, list[float]] = {name: [] for name, _, _ in paths}
    evict = bytearray(args.evict_kib * 1024) if args.evict_kib else None
    for repeat in range(args.repeats):  # interleaved, so the machine's drift hits all alike
        for name, inline, bodies in paths if repeat % 2 == 0 else reversed(paths):
            values[name].append(cpu_per_call(inline, heads, bodies, args.runs, evict))
    # Noise on a shared VM only adds time: the fastest round is the steadiest estimate.
    fastest = {name: min(v) for name, v in values.items()}
    base = fastest[paths[0][0]]
    print(f"fastest of {args.repeats} interleaved rounds of {args.runs} reviews "
          "(median in brackets), CPU of all threads\n")  # fmt: skip
    print("| path | us per review | beyond the no-op |")
    print("|---|---:|---:|")
    for name, value in fastest.items():
        middle = statistics.median(values[name])
        print(f"| {name} | {value:.1f} ({middle:.1f}) | {value - base:+.1f} |")


if __name__ == "__main__":
    sys.exit(main())
