"""/metrics adds up every gunicorn worker (prometheus multiprocess mode)."""

from __future__ import annotations

from pathlib import Path

import requests

from harness.builders import argo_pod, review_of
from harness.servers import Server, example_config, running_server


def admissions(server: Server) -> float:
    text = server.session.get(f"{server.admin_url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("jetstream_pin_admissions_total{") and 'outcome="patched"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_the_admissions_of_every_worker(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    config = example_config(tmp_path / "server")
    config["server"]["workers"] = 3
    with running_server(tmp_path / "server", config, env={"TMPDIR": str(scratch)}) as server:
        before = admissions(server)
        review = review_of(argo_pod("my-experiment"))
        for _ in range(30):
            with requests.Session() as fresh:  # a new connection: any worker may take it
                fresh.trust_env = False
                reply = fresh.post(f"{server.url}/mutate", json=review,
                                   verify=str(server.ca_file), timeout=10)  # fmt: skip
                assert "patch" in reply.json()["response"]
        assert admissions(server) == before + 30
        text = server.session.get(f"{server.admin_url}/metrics", timeout=10).text
        writers = list(scratch.glob("jetstream-pin-*/metrics/counter_*.db"))
    assert len(writers) >= 2, "the admissions were not spread over several workers"
    assert "jetstream_pin_admission_duration_seconds_bucket" in text
    assert "jetstream_pin_image_history_age_seconds" in text
