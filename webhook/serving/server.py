"""`jetstream-pin serve`: the app under gunicorn, over TLS only.

The master process validates the whole configuration once (so a broken
config fails the start, not the first pod); each worker then builds its own
sources after the fork, because background threads do not survive a fork.

Shutdown drains: on SIGTERM the master first marks the server as draining
(every worker's /readyz turns 503 so the endpoint leaves the Service) and
keeps serving for `server.drainSeconds`, then stops gunicorn gracefully, which
lets requests in flight finish before the workers exit.

gunicorn listens on two ports with the same certificate: `server.port` for
admission and `server.adminPort` for the status page; the dispatch table
(webhook.serving.dispatch) routes by the port a request arrived on. Every
worker records its recent decisions in the shared runtime directory (see
`webhook.insight.recent`).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from webhook import logs, metrics
from webhook.config import Config
from webhook.serving.routes import Routes
from webhook.serving.seats import Seats
from webhook.serving.tls import ReloadingContext


class GunicornLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, through the process's one bounded, dropping handler (webhook.logs).

    gunicorn's own handler writes to stderr synchronously: with a log pipe that
    nobody reads, the master blocked in a write and replaced no worker.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        handler = logs.shared_handler()
        self.error_log.handlers[:] = [handler]
        self.access_log.handlers[:] = [handler]
        self.error_log.setLevel(logging.INFO)
        self.access_log.setLevel(logging.WARNING)


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class RuntimeState:
    """A directory shared by the master and its workers: metrics files, the drain flag."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.metrics = root / "metrics"
        self.drain_flag = root / "draining"
        self.decisions = root / "decisions"  # recent decisions, one file per worker

    @classmethod
    def create(cls) -> RuntimeState:
        state = cls(Path(tempfile.mkdtemp(prefix="jetstream-pin-")))  # mode 0700
        state.decisions.mkdir(mode=0o700)
        return state

    def draining(self) -> bool:
        return self.drain_flag.exists()


class DrainingArbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's master, with a drain period before the graceful stop on SIGTERM."""

    def __init__(self, app: WebhookServer) -> None:
        super().__init__(app)
        self.state = app.state
        self.drain_seconds = app.webhook_config.server.drain_seconds
        self.tls = app.reloading

    def manage_workers(self) -> None:
        """Every loop (about once a second) and before forking: the master's TLS context
        follows the files, so a worker forked next starts from the last good pair, and a
        rotation that cannot be loaded is reported here, once (webhook.serving.tls)."""
        try:
            self.tls.context()
        except Exception:
            self.log.exception("cannot check the serving certificate")
        super().manage_workers()

    def handle_term(self) -> None:
        self.state.drain_flag.touch()
        self.log.info("SIGTERM: draining for %ss before stopping", self.drain_seconds)
        deadline = time.monotonic() + self.drain_seconds
        while time.monotonic() < deadline:
            time.sleep(0.1)
        raise StopIteration


def _worker_exited(server: Any, worker: Any) -> None:
    metrics.worker_exited(worker.pid)
    seats: Seats | None = getattr(server.app, "seats", None)
    if seats is not None:
        seats.free(getattr(worker, "seat", None))


def _seat_worker(server: Any, worker: Any) -> None:
    """In the master, before the fork: the worker's seat in the shared connection counts."""
    seats: Seats | None = getattr(server.app, "seats", None)
    worker.seat = seats.take() if seats is not None else None


# Builds what a worker serves, after the fork: from the config, the shared runtime
# directory and the TLS context the master serves with (webhook.wiring.serve gives
# the real one).
AppFactory = Callable[[Config, RuntimeState, ReloadingContext], Routes]


class WebhookServer(BaseApplication):  # type: ignore[misc]
    """gunicorn serving the app that `app_factory` builds in each worker.

    The factory is passed in, so this layer does not import the wiring above it.
    """

    def __init__(self, config: Config, state: RuntimeState, app_factory: AppFactory) -> None:
        self.webhook_config = config
        self.state = state
        self.app_factory = app_factory
        workers = config.server.workers
        # Room for a replacement of every worker while the old one still drains.
        self.seats = Seats(2 * workers) if workers > 1 else None
        super().__init__()

    def run(self) -> None:
        DrainingArbiter(self).run()

    def load_config(self) -> None:
        server = self.webhook_config.server
        self.reloading = ReloadingContext(server.cert_file, server.key_file)
        self.reloading.context()  # fail now, with the file name, if the pair cannot be loaded
        settings: dict[str, Any] = {
            "bind": [address(server.host, server.port), address(server.host, server.admin_port)],
            "workers": server.workers,
            "worker_class": "webhook.serving.worker.FrontWorker",  # TLS, timeouts: serving.front
            "threads": server.threads,
            "timeout": 30,
            "graceful_timeout": 25,
            "accesslog": None,
            "errorlog": "-",
            "logger_class": GunicornLogger,
            "proc_name": "jetstream-pin",
            "limit_request_line": 8190,
            "forwarded_allow_ips": "",
            "pre_fork": _seat_worker,
            "child_exit": _worker_exited,
            "on_exit": lambda _server: shutil.rmtree(self.state.root, ignore_errors=True),
        }
        if "control_socket_disable" in self.cfg.settings:
            settings["control_socket_disable"] = True  # no writable home in a hardened pod
        for name, value in settings.items():
            self.cfg.set(name, value)

    def load(self) -> Routes:
        logs.configure()
        return self.app_factory(self.webhook_config, self.state, self.reloading)
