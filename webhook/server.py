"""`jetstream-pin serve`: the app under gunicorn, over TLS only.

The master process validates the whole configuration once (so a broken
config fails the start, not the first pod); each worker then builds its own
sources after the fork, because background threads do not survive a fork.

gunicorn listens on two ports with the same certificate: `server.port` for
admission and `server.adminPort` for the status page; the app routes by the
port a request arrived on. The master also creates the private directory
where every worker records its recent decisions (see `webhook.recent`) and
removes it when it exits.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from webhook import logs
from webhook.config import Config
from webhook.tls import ReloadingContext, gunicorn_hook
from webhook.wiring import Wiring

LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "webhook.logs.JsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
    },
}


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class WebhookServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, config: Config) -> None:
        self.webhook_config = config
        # Created before the workers fork, so they all share it; mode 0700.
        self.decisions_dir = Path(tempfile.mkdtemp(prefix="jetstream-pin-decisions-"))
        self.master_pid = os.getpid()
        super().__init__()

    def on_exit(self, _arbiter: Any) -> None:
        if os.getpid() == self.master_pid:
            shutil.rmtree(self.decisions_dir, ignore_errors=True)

    def load_config(self) -> None:
        server = self.webhook_config.server
        reloading = ReloadingContext(server.cert_file, server.key_file)
        reloading.context()  # fail now, with the file name, if the pair cannot be loaded
        settings: dict[str, Any] = {
            "bind": [address(server.host, server.port), address(server.host, server.admin_port)],
            "workers": server.workers,
            "worker_class": "gthread",
            "threads": server.threads,
            "certfile": str(server.cert_file),
            "keyfile": str(server.key_file),
            "ssl_context": gunicorn_hook(reloading),
            "keepalive": 75,
            "timeout": 30,
            "graceful_timeout": 25,
            "accesslog": None,
            "logconfig_dict": LOG_CONFIG,
            "proc_name": "jetstream-pin",
            "limit_request_line": 8190,
            "forwarded_allow_ips": "",
            "on_exit": self.on_exit,
        }
        if "control_socket_disable" in self.cfg.settings:
            settings["control_socket_disable"] = True  # no writable home in a hardened pod
        for name, value in settings.items():
            self.cfg.set(name, value)

    def load(self) -> Flask:
        logs.configure()
        return Wiring(self.webhook_config, self.decisions_dir).app()


def serve(config: Config) -> None:
    Wiring(config).admitter  # noqa: B018 - validate every source before forking workers
    WebhookServer(config).run()
