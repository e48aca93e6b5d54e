"""The accept loop survives its own errors: a worker that stops accepting still looks alive."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from harness.servers import running_front
from tests.support.fakes import World
from webhook.serving.dispatch import Dispatch
from webhook.serving.seats import Seat, Seats


class SeatThatFailsOnce(Seat):
    def __init__(self) -> None:
        super().__init__(Seats(2), 0)
        self.failed = False

    def publish(self, connections: int) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("the shared table is broken")
        super().publish(connections)


def test_an_error_after_accepting_does_not_stop_the_accepting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seat = SeatThatFailsOnce()
    probe = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with (
        caplog.at_level(logging.ERROR, logger="webhook.serving.front"),
        running_front(tmp_path, Dispatch(World().admitter()), seat=seat) as front,
    ):
        first = front.exchange(probe)  # its accept raised after the fact
        second = front.exchange(probe)
    assert seat.failed
    assert first.startswith(b"HTTP/1.1 200")
    assert second.startswith(b"HTTP/1.1 200")
    assert any("accepting again" in r.getMessage() for r in caplog.records)
