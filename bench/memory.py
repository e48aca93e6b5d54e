"""What clients that hold resources cost one worker: its resident set under each kind.

Run it with `scripts/bench memory` (or `python -m bench.memory` with
PYTHONPATH at the repository). A fresh webhook (1 worker, the example data,
loopback) per scenario; the worker's VmRSS before and while held:

- idle: connections that sent one GET each and idle (the admission port's bound);
- heads: connections that each sent 60 KiB of a head that never ends;
- bodies: connections that each sent a 6 MiB review body one byte short.

Prints a markdown table; docs/serving.md has the numbers and what they mean.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from harness.clients import hold_a_body, idle_after_one_get, unfinished_head
from harness.servers import Server, example_config, resident_bytes, running_server

MiB = 1024 * 1024


def idle(server: Server, stack: ExitStack, count: int) -> None:
    with ThreadPoolExecutor(32) as pool:
        for tls in pool.map(lambda _: idle_after_one_get(server), range(count)):
            if tls is not None:
                stack.callback(tls.close)


def heads(server: Server, stack: ExitStack, count: int) -> None:
    with ThreadPoolExecutor(32) as pool:
        for tls in pool.map(lambda _: unfinished_head(server, 60 * 1024), range(count)):
            stack.callback(tls.close)


def bodies(server: Server, stack: ExitStack, count: int) -> None:
    stop = threading.Event()
    stack.callback(stop.set)
    for _ in range(count):
        hold_a_body(server, stack, stop, 6 * MiB)


SCENARIOS: dict[str, tuple[Callable[[Server, ExitStack, int], None], int, str]] = {
    "idle": (idle, 1024, "connections idle after one GET"),
    "heads": (heads, 1024, "connections holding an unfinished 60 KiB head"),
    "bodies": (bodies, 48, "connections holding a 6 MiB body one byte short"),
}


def measure(workdir: Path, hold: Callable[[Server, ExitStack, int], None], count: int) -> int:
    """Peak growth of the worker's resident set while `count` clients hold (over 4 s)."""
    config = example_config(workdir)
    # Long enough to hold everything while it is measured; the bounds themselves are default.
    config["server"].update(workers=1, threads=4, headerTimeoutSeconds=60)
    with running_server(workdir, config) as server, ExitStack() as stack:
        (worker,) = server.workers()
        time.sleep(1)
        before = resident_bytes(worker)
        hold(server, stack, count)
        peak = before
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            peak = max(peak, resident_bytes(worker))
            time.sleep(0.05)
        return peak - before


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help=f"some of {', '.join(SCENARIOS)} (all)")
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(
            f"unknown scenario {', '.join(sorted(unknown))}: choose from {list(SCENARIOS)}"
        )
    workdir = Path(tempfile.mkdtemp(prefix="jetstream-pin-memory-"))
    try:
        print("| clients | worker RSS growth | per client |")
        print("|---|---:|---:|")
        for name in args.scenarios or SCENARIOS:
            hold, count, what = SCENARIOS[name]
            growth = measure(workdir / name, hold, count)
            print(f"| {count} {what} | {growth / MiB:.0f} MiB | {growth / count / 1024:.0f} KiB |")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
