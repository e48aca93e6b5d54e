"""Starting the real webhook (`jetstream-pin serve`, gunicorn, TLS) on loopback.

Shared by the tests and the benchmarks.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from harness.builders import EXAMPLES, JETSTREAM, ROOT
from harness.ports import free_port
from harness.standins.artifactregistry import ArtifactRegistryStandIn
from harness.standins.bigquery import bigquery_source
from webhook import certs
from webhook.serving.front import Front, Limits
from webhook.serving.routes import Routes


@dataclass
class Server:
    url: str
    admin_url: str  # the status page's port; gunicorn binds it with the admission port
    ca_file: Path
    cert_dir: Path
    log_file: Path
    process: subprocess.Popen[bytes]
    session: requests.Session

    def post_review(self, review: Any) -> requests.Response:
        return self.session.post(f"{self.url}/mutate", json=review, timeout=10)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("https://").split(":")
        return host, int(port)

    @property
    def admin_address(self) -> tuple[str, int]:
        host, port = self.admin_url.removeprefix("https://").split(":")
        return host, int(port)

    def tls_connection(self, admin: bool = False, timeout: float = 10) -> ssl.SSLSocket:
        """A new TLS connection to the admission (or admin) port, handshake done."""
        raw = socket.create_connection(self.admin_address if admin else self.address, timeout)
        context = ssl.create_default_context(cafile=str(self.ca_file))
        return context.wrap_socket(raw, server_hostname="localhost")

    def workers(self) -> list[int]:
        return workers_of(self.process.pid)


def workers_of(master: int) -> list[int]:
    """The pids of the processes whose parent is `master` (gunicorn's workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{master}\n" in status:
                pids.append(int(entry.name))
    return pids


def resident_bytes(pid: int, peak: bool = False) -> int:
    """The resident set of `pid` now (VmRSS), or the most it has had (VmHWM)."""
    field = "VmHWM:" if peak else "VmRSS:"
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for {pid}")


def example_config(workdir: Path, **overrides: Any) -> dict[str, Any]:
    """The example config, with absolute paths and a free loopback port."""
    config: dict[str, Any] = yaml.safe_load((EXAMPLES / "config.yaml").read_text())
    config["static"] = str(EXAMPLES / "static-data.yaml")
    port = free_port()
    admin_port = free_port()
    while admin_port == port:
        admin_port = free_port()
    config["server"] = {
        "host": "127.0.0.1",
        "port": port,
        "adminPort": admin_port,
        "certFile": str(workdir / "certs" / certs.CERT_FILE),
        "keyFile": str(workdir / "certs" / certs.KEY_FILE),
        "workers": 2,
        "threads": 4,
    }
    config["images"][0]["repository"] = JETSTREAM
    config.update(overrides)
    return config


def remote_config(
    workdir: Path, bigquery_url: str, registry_url: str, prefetch: bool
) -> dict[str, Any]:
    """One worker (the default) on BigQuery and Artifact Registry stand-ins: bursts, bench."""
    config = example_config(workdir)
    config["server"].update(workers=1, threads=16)
    config["images"][0]["history"] = ArtifactRegistryStandIn().source(registry_url)
    config["enrollments"] = bigquery_source(bigquery_url)
    config["cache"] = {"prefetchEnrollments": prefetch}
    return config


@contextmanager
def running_server(
    workdir: Path,
    config: dict[str, Any] | None = None,
    module: Sequence[str] = ("webhook", "serve", "--config"),
    env: dict[str, str] | None = None,
    certs_ready: bool = False,
    output: int | None = None,
) -> Iterator[Server]:
    """`python -m <module...> CONFIG` on loopback; the benchmark swaps in its no-op server.

    `certs_ready`: the caller wrote the serving pair (and ca.crt) where the config says.
    `output`: a file descriptor for the server's stdout and stderr instead of its log file
    (which then stays empty).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config = config or example_config(workdir)
    cert_dir = Path(config["server"]["certFile"]).parent
    if not certs_ready:
        certs.write(certs.issue(["localhost"], ["127.0.0.1"]), cert_dir)
    config_file = workdir / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    log_file = workdir / "server.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", *module, str(config_file)],
            stdout=log if output is None else output, stderr=subprocess.STDOUT, cwd=workdir,
            env=env,
        )  # fmt: skip
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override `verify`
    session.verify = str(cert_dir / certs.CA_FILE)
    server = Server(
        f"https://127.0.0.1:{config['server']['port']}",
        f"https://127.0.0.1:{config['server'].get('adminPort', 8444)}",
        cert_dir / certs.CA_FILE, cert_dir, log_file, process, session,
    )  # fmt: skip
    try:
        _wait_until_healthy(server)
        yield server
    finally:
        session.close()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class InProcessFront:
    """A `webhook.serving.front.Front` serving on loopback in a thread of the test process."""

    front: Front
    port: int
    ca_file: Path

    def exchange(self, request: bytes) -> bytes:
        """One request on a new TLS connection that asks to close; the whole answer."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        received = b""
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(request)
            while chunk := tls.recv(65536):
                received += chunk
        return received


@contextmanager
def running_front(
    workdir: Path, routes: Routes, limits: Limits | None = None, seat: Any = None
) -> Iterator[InProcessFront]:
    """`routes` behind a Front on a free loopback port (its admission port) until the block ends."""
    certs.write(certs.issue(["localhost"], ["127.0.0.1"]), workdir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(workdir / certs.CERT_FILE, workdir / certs.KEY_FILE)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    front = Front(routes, [listener], lambda: context, port, 2, limits or Limits(), seat)
    stop = threading.Event()
    serving = threading.Thread(target=lambda: asyncio.run(front.serve(lambda: not stop.is_set())))
    serving.start()
    try:
        yield InProcessFront(front, port, workdir / certs.CA_FILE)
    finally:
        stop.set()
        serving.join(30)
        listener.close()


def _wait_until_healthy(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the webhook exited at start:\n{server.log()}")
        try:
            if server.session.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the webhook did not become healthy in {timeout}s:\n{server.log()}")
