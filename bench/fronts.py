"""Front ends compared: the no-op app under each server, at speed and behind stalled clients.

`python -m bench.fronts` (or `scripts/bench --fronts`) serves the benchmark's
no-op Flask app (bench/noop.py) three ways, each with TLS and the same
process model (2 workers x 4 threads): gunicorn's gthread worker (the
server the front worker replaced), gunicorn with `webhook.serving.worker.FrontWorker` (the
server now), and granian's WSGI interface (the `bench` extra). For each it
prints wrk's throughput at 4 and 16 connections, then the time one review
takes while 256 idle TCP connections and 64 TLS connections dribbling their
headers are held open (10 reviews on fresh connections; a review waits at
most 15 s; the dribblers whose handshake the server does not finish within
3 s are left out). Ratios are against gthread in the same run.
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from gunicorn.app.base import BaseApplication

from bench.noop import noop_app
from bench.run import Result, run_wrk, write_bodies
from harness.builders import argo_pod, fixture_review, review_of
from harness.servers import Server, example_config, running_server
from webhook.config import Config, load_config
from webhook.serving.server import RuntimeState, address

FRONTS = ("gthread", "front", "granian")
STALLED_TCP = 256
STALLED_TLS = 64


class GthreadServer(BaseApplication):  # type: ignore[misc]
    """The server as it was: gunicorn's gthread worker, TLS in its threads, keep-alive 75 s."""

    def __init__(self, config: Config) -> None:
        self.webhook_config = config
        super().__init__()

    def load_config(self) -> None:
        server = self.webhook_config.server
        for name, value in {
            "bind": [address(server.host, server.port)],
            "workers": server.workers,
            "worker_class": "gthread",
            "threads": server.threads,
            "certfile": str(server.cert_file),
            "keyfile": str(server.key_file),
            "keepalive": 75,
            "accesslog": None,
        }.items():
            self.cfg.set(name, value)

    def load(self) -> Flask:
        return noop_app(self.webhook_config, RuntimeState(Path(tempfile.gettempdir())))


def granian_app() -> Flask:
    """granian's factory target (`bench.fronts:granian_app`)."""
    return noop_app(load_config(os.environ["JETSTREAM_PIN_CONFIG"]), RuntimeState(Path("/")))


def serve(front: str, config_file: str) -> None:
    config = load_config(config_file)
    if front == "gthread":
        GthreadServer(config).run()
        return
    server = config.server
    granian = str(Path(sys.executable).parent / "granian")
    os.environ["JETSTREAM_PIN_CONFIG"] = config_file
    os.execv(granian, [  # noqa: S606 - the benchmark's own server, arguments from its config
        granian, "--interface", "wsgi", "--factory", "--host", server.host,
        "--port", str(server.port), "--workers", str(server.workers),
        "--blocking-threads", str(server.threads), "--ssl-certificate", str(server.cert_file),
        "--ssl-keyfile", str(server.key_file), "--ssl-protocol-min", "tls1.2",
        "--no-ws", "--http", "1", "--log-level", "warning", "bench.fronts:granian_app",
    ])  # fmt: skip


@contextmanager
def running(front: str, workdir: Path) -> Iterator[Server]:
    config = example_config(workdir)
    config["server"].update(workers=2, threads=4)
    module = ["bench.noop"] if front == "front" else ["bench.fronts", front]
    with running_server(workdir, config, module=module) as server:
        yield server


def handshake(server: Server) -> ssl.SSLSocket | None:
    """A TLS connection, or None when the server does not finish a handshake within 3 s."""
    host, port = server.url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(server.ca_file))
    try:
        raw = socket.create_connection((host, int(port)), timeout=3)
    except OSError:
        return None
    try:
        return context.wrap_socket(raw, server_hostname=host)
    except OSError:
        raw.close()
        return None


def stalled_review_seconds(server: Server) -> list[float]:
    """Seconds each of 10 reviews takes while stalled clients hold connections (15: gave up)."""
    host, port = server.url.removeprefix("https://").split(":")
    stop = threading.Event()
    with ExitStack() as stack:
        for _ in range(STALLED_TCP):
            stack.enter_context(socket.create_connection((host, int(port)), timeout=10))
        with ThreadPoolExecutor(STALLED_TLS) as pool:
            opened = list(pool.map(lambda _: handshake(server), range(STALLED_TLS)))
        dribblers = [stack.enter_context(tls) for tls in opened if tls is not None]
        print(f"  {len(dribblers)} of {STALLED_TLS} dribbling TLS connections got a handshake")

        def drip() -> None:
            for byte in b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json":
                for tls in dribblers:
                    with suppress(OSError):
                        tls.send(bytes([byte]))
                if stop.wait(1.0):
                    return

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        review = review_of(argo_pod("my-experiment"))
        seconds = []
        for _ in range(10):
            with requests.Session() as session:
                session.trust_env = False
                started = time.monotonic()
                try:
                    session.post(f"{server.url}/mutate", json=review,
                                 verify=str(server.ca_file), timeout=15)  # fmt: skip
                    seconds.append(time.monotonic() - started)
                except requests.RequestException:
                    seconds.append(15.0)
        stop.set()
        dripper.join(5)
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] in ("gthread", "granian"):
        serve(sys.argv[1], sys.argv[2])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--fronts", nargs="+", default=list(FRONTS), choices=FRONTS)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="jetstream-pin-fronts-"))
    bodies = write_bodies(workdir, "fixture", [fixture_review("01-create-emissary-v3.6.json")])
    rates: dict[tuple[str, int], Result] = {}
    stalled: dict[str, list[float]] = {}
    for front in args.fronts:
        with running(front, workdir / front) as server:
            for connections in (4, 16):
                name = f"{front} -c{connections}"
                rates[front, connections] = run_wrk(
                    name, server.url, bodies, args.seconds, connections
                )
            stalled[front] = stalled_review_seconds(server)
    print_results(args.fronts, rates, stalled)
    return 0


def print_results(
    fronts: Sequence[str], rates: dict[tuple[str, int], Result], stalled: dict[str, list[float]]
) -> None:
    print("| front end | connections | req/s | p50 ms | p99 ms | errors | req/s vs gthread |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for front in fronts:
        for connections in (4, 16):
            result = rates[front, connections]
            base: Any = rates.get(("gthread", connections))
            ratio = f"{result.rate / base.rate:.2f}" if base and base.rate else "-"
            print(f"| {front} | {connections} | {result.rate:.0f} | {result.p50_ms:.2f} | "
                  f"{result.p99_ms:.2f} | {result.errors} | {ratio} |")  # fmt: skip
    print()
    print(f"one review behind {STALLED_TCP} idle TCP + {STALLED_TLS} dribbling TLS connections "
          "(10 reviews, fresh connections; 15 s = gave up):")  # fmt: skip
    for front in fronts:
        seconds = sorted(stalled[front])
        print(f"  {front:8} median {statistics.median(seconds) * 1000:8.0f} ms   "
              f"max {seconds[-1] * 1000:8.0f} ms")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
