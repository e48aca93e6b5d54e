"""The gunicorn worker class that runs `webhook.serving.front` in each worker process.

gunicorn stays the process manager (the master binds both ports, forks and
replaces workers, drains on SIGTERM, and the metrics and recent decisions
are shared across workers as before); this class only replaces how a worker
serves its sockets.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from gunicorn.workers.base import Worker

from webhook.serving.front import Front, Limits
from webhook.serving.routes import Routes
from webhook.serving.seats import Seat, Seats

SWITCH_SECONDS = 0.001


class FrontWorker(Worker):  # type: ignore[misc]
    def run(self) -> None:
        # The loop needs the GIL back quickly after each app thread's slice, or every
        # read and write waits out CPython's default 5 ms switch interval.
        sys.setswitchinterval(SWITCH_SECONDS)
        server = self.app.webhook_config.server
        self.app.reloading.reports = False  # the master reports a rotation that cannot load
        routes: Routes = self.wsgi  # what the server's app factory built (webhook.wiring)
        front = Front(
            routes,
            [listener.sock for listener in self.sockets],
            self.app.reloading.context,
            webhook_port=server.port,
            threads=server.threads,
            limits=limits_of(server),
            seat=self.seat_in(getattr(self.app, "seats", None)),
        )
        asyncio.run(
            front.serve(
                alive=lambda: self.alive and os.getppid() == self.ppid,
                heartbeat=self.notify,
                graceful_seconds=self.cfg.graceful_timeout,
            )
        )

    def seat_in(self, seats: Seats | None) -> Seat | None:
        """This worker's seat, given by the master before the fork (webhook.serving.server)."""
        index = getattr(self, "seat", None)
        return Seat(seats, index) if seats is not None and index is not None else None


def limits_of(server: Any) -> Limits:
    return Limits(
        handshake_seconds=server.handshake_timeout_seconds,
        header_seconds=server.header_timeout_seconds,
        body_seconds=server.body_timeout_seconds,
        idle_seconds=server.idle_timeout_seconds,
        max_connections=server.max_connections,
        admin_max_connections=server.admin_max_connections,
        max_body_bytes=server.max_request_bytes,
        body_bytes_in_flight=server.max_body_bytes_in_flight,
    )
