"""One structured JSON line per decision, with what an operator searches for."""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time

import pytest

from harness.builders import EXAMPLES, argo_pod, review_of
from tests.support.dispatching import DispatchClient
from webhook import logs
from webhook.config import load_config
from webhook.logs import BatchingHandler, JsonFormatter
from webhook.wiring import Wiring


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    formatter = JsonFormatter()
    return [
        json.loads(formatter.format(r)) for r in caplog.records if r.name == "webhook.decisions"
    ]


def test_one_json_line_per_decision(caplog: pytest.LogCaptureFixture) -> None:
    config = load_config(EXAMPLES / "config.yaml")
    client = DispatchClient(Wiring(config).dispatch(), config.server.port)
    url = f"https://localhost:{config.server.port}"
    review = review_of(argo_pod("firefox-desktop-private-browsing-redesign-rollout"))
    with caplog.at_level(logging.INFO, logger="webhook.decisions"):
        client.post("/mutate", json=review, base_url=url)
        client.post("/mutate", json=review_of(argo_pod(None)), base_url=url)
    (line,) = lines(caplog)
    assert line["severity"] == "INFO"
    assert line["outcome"] == "patched"
    assert line["uid"] == review["request"]["uid"]
    assert line["slug"] == "firefox-desktop-private-browsing-redesign-rollout"
    assert line["reason"] == "enrollment"
    assert line["enrolled_at"] == "2024-05-30T02:00:00Z"
    assert line["images"] == {
        "gcr.io/moz-fx-data-experiments/jetstream": "sha256:"
        "4bba4eebe859c802badf55f8a2bc7015e7009d574a169febeeb92ac2fd622073"
    }
    assert line["shas"] == {"metric-hub": "1fd6c5091894d06c3005187ad87d8f00b2662780"}
    assert isinstance(line["duration_ms"], float)
    assert "time" in line


def test_pass_through_is_logged_only_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    config = load_config(EXAMPLES / "config.yaml")
    client = DispatchClient(Wiring(config).dispatch(), config.server.port)
    url = f"https://localhost:{config.server.port}"
    with caplog.at_level(logging.DEBUG, logger="webhook.decisions"):
        client.post("/mutate", json=review_of(argo_pod(None)), base_url=url)
    (line,) = lines(caplog)
    assert (line["severity"], line["outcome"]) == ("DEBUG", "pass-through")


def test_refusals_are_logged_with_their_reason(caplog: pytest.LogCaptureFixture) -> None:
    config = load_config(EXAMPLES / "config.yaml")
    client = DispatchClient(Wiring(config).dispatch(), config.server.port)
    url = f"https://localhost:{config.server.port}"
    pod = argo_pod("my-experiment", labels={"jetstream/pin": "nope"})
    with caplog.at_level(logging.INFO, logger="webhook.decisions"):
        client.post("/mutate", json=review_of(pod), base_url=url)
    (line,) = lines(caplog)
    assert line["outcome"] == "refused"
    assert "accepted" in str(line["detail"])


def test_batching_handler_writes_every_record_in_order() -> None:
    stream = io.StringIO()
    handler = BatchingHandler(stream, JsonFormatter())
    logger = logging.getLogger("test.batching")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for n in range(500):
            logger.warning("line %d", n, extra={"fields": {"n": n, "token": None}})
    finally:
        logger.removeHandler(handler)
        handler.close()
    written = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [entry["n"] for entry in written] == list(range(500))
    assert written[0]["message"] == "line 0"
    assert written[0]["severity"] == "WARNING"


class StalledStream(io.StringIO):
    """An output whose writes block until released: a pipe nobody reads."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait(10)
        return super().write(text)


def test_a_stalled_output_drops_lines_instead_of_growing() -> None:
    stream = StalledStream()
    handler = BatchingHandler(stream, JsonFormatter(), max_pending=50)
    logger = logging.getLogger("test.stalled")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        started = time.monotonic()
        for n in range(1000):
            logger.warning("line %d", n)
        assert time.monotonic() - started < 5, "logging blocked on the stalled output"
        # Kept: the writer's first record and one batch (each at most the queue's 50),
        # plus the 50 queued behind them; everything else was dropped and counted.
        assert handler.dropped >= 1000 - 1 - 50 - 50
        assert handler.queue.qsize() <= 50
    finally:
        stream.release.set()
        logger.removeHandler(handler)
        handler.close()


class GoneStream(io.StringIO):
    """An output whose reader has gone: every write fails with EPIPE."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_lines_an_output_refuses_are_counted_as_dropped() -> None:
    handler = BatchingHandler(GoneStream(), JsonFormatter())
    logger = logging.getLogger("test.gone")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for n in range(20):
            logger.warning("line %d", n)
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert handler.dropped == 20


def test_fields_orjson_cannot_write_still_make_one_json_line() -> None:
    record = logging.LogRecord("webhook.decisions", logging.INFO, __file__, 1, "odd", (), None)
    record.fields = {"by_number": {1: "one"}, "huge": 2**70}
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line)["by_number"] == {"1": "one"}
    assert json.loads(line)["huge"] == 2**70


def test_fd_output_writes_whole_lines_of_at_most_pipe_buf_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Writes of whole lines within PIPE_BUF are atomic on a pipe the workers share."""
    asked: list[int] = []

    def write_all(fd: int, data: memoryview) -> int:
        asked.append(len(data))
        return len(data)

    monkeypatch.setattr(os, "write", write_all)
    short = "s" * 999 + "\n"
    long = "l" * 9999 + "\n"
    assert logs.FdOutput(2).write(short * 5 + long + short) == 16000
    # four short lines fit in 4,096 bytes; the fifth alone before the long one; the long
    # one whole (never cut); the last line.
    assert asked == [4000, 1000, 10000, 1000]


def test_fd_output_finishes_a_short_write(monkeypatch: pytest.MonkeyPatch) -> None:
    written = bytearray()

    def short_writes(fd: int, data: memoryview) -> int:
        written.extend(data[:7])
        return min(7, len(data))

    monkeypatch.setattr(os, "write", short_writes)
    text = "a line of text\n" * 3
    logs.FdOutput(2).write(text)
    assert written == text.encode()
