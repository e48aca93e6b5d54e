"""A log output nobody reads cannot stop the master from replacing workers.

gunicorn's own logger wrote synchronously to stderr: with a log pipe that
nobody drains (a stuck log collector), the master blocked in a pipe write and
a killed worker was never replaced, so nothing answered until the reader came
back. Now the master logs through the same bounded, dropping writer as the
workers: lines wait in memory (or are dropped and counted), never the master.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

from harness.clients import healthz_seconds
from harness.servers import example_config, running_server

REPLACED_WITHIN = 10.0


def fill(fd: int) -> int:
    """Write into the pipe `fd` until it is full; the bytes written."""
    os.set_blocking(fd, False)
    written = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            written += os.write(fd, b"x" * 4096)
    os.set_blocking(fd, True)
    return written


def drain(fd: int, into: bytearray, stop: threading.Event) -> None:
    """Read the pipe `fd` until it ends (or `stop` and nothing more comes)."""
    os.set_blocking(fd, False)
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            if stop.is_set():
                return
            time.sleep(0.02)
            continue
        if not chunk:
            return
        into += chunk


def test_a_killed_worker_is_replaced_while_nobody_reads_the_log(tmp_path: Path) -> None:
    config = example_config(tmp_path)
    config["server"].update(workers=1)
    read_end, write_end = os.pipe()
    received = bytearray()
    stop = threading.Event()
    reader = threading.Thread(target=drain, args=(read_end, received, stop), daemon=True)
    try:
        with running_server(tmp_path, config, output=write_end) as server:
            (old,) = server.workers()
            fill(write_end)  # the log pipe is full, and nobody reads it
            killed = time.monotonic()
            os.kill(old, signal.SIGKILL)
            replaced = None
            new: list[int] = []
            while time.monotonic() - killed < REPLACED_WITHIN + 5:
                new = [pid for pid in server.workers() if pid != old]
                if new and healthz_seconds(server, timeout=1) < 1.0:
                    replaced = time.monotonic() - killed
                    break
                time.sleep(0.1)
            reader.start()  # the collector comes back: what was kept is written
            print(f"worker {old} killed with the log pipe full; replaced in {replaced}s")
            assert replaced is not None, f"no new worker answered within {REPLACED_WITHIN + 5}s"
            assert replaced < REPLACED_WITHIN
            # What the master and the new worker logged meanwhile was kept, not lost: the
            # worker, forked while the master's writer was stuck, writes on its own.
            expected = [b"was sent SIGKILL", b"Booting worker with pid: %d" % new[0]]
            deadline = time.monotonic() + 10
            while not all(line in received for line in expected) and time.monotonic() < deadline:
                time.sleep(0.1)
            for line in expected:
                assert line in received, f"{line!r} never came: {bytes(received[-2000:])!r}"
    finally:
        stop.set()
        if reader.ident is None:
            reader.start()
        os.close(write_end)
        reader.join(30)
        os.close(read_end)
