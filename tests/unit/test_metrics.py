"""Metrics move with what the webhook does: admissions, backend calls, cache hits."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from prometheus_client import REGISTRY

from harness.builders import EXAMPLES, JETSTREAM, argo_pod, review_of
from harness.servers import example_config
from tests.support.dispatching import DispatchClient
from tests.support.kube import apply_response
from webhook import certs, metrics
from webhook.config import load_config, parse_config
from webhook.wiring import Wiring


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_admissions_backend_calls_and_cache_hits_are_counted() -> None:
    config = load_config(EXAMPLES / "config.yaml")
    client = DispatchClient(Wiring(config).dispatch(), config.server.port)
    # The app routes by arrival port: admission requests go to server.port.
    post = functools.partial(client.post, base_url=f"https://localhost:{config.server.port}")
    images = f"static images of {JETSTREAM}"
    before = {
        "patched": sample("jetstream_pin_admissions_total", outcome="patched", reason="breaking"),
        "unchanged": sample(
            "jetstream_pin_admissions_total", outcome="unchanged", reason="breaking"
        ),
        "malformed": sample("jetstream_pin_admissions_total", outcome="malformed", reason=""),
        "listing": sample("jetstream_pin_backend_calls_total", source=images, result="ok"),
        "hits": sample("jetstream_pin_cache_requests_total", cache="image-history", result="hit"),
        "latency": sample("jetstream_pin_admission_duration_seconds_count", outcome="patched"),
    }
    review = review_of(argo_pod("my-experiment"))
    first = post("/mutate", json=review).get_json()
    patched = apply_response(review["request"]["object"], first)
    post("/mutate", json=review_of(argo_pod("android-onboarding-notification-permission-v2")))
    post("/mutate", json=review_of(patched))
    post("/mutate", data="{", content_type="application/json")

    assert (
        sample("jetstream_pin_admissions_total", outcome="patched", reason="breaking")
        == before["patched"] + 2
    )
    assert (
        sample("jetstream_pin_admissions_total", outcome="unchanged", reason="breaking")
        == before["unchanged"] + 1
    )
    assert (
        sample("jetstream_pin_admissions_total", outcome="malformed", reason="")
        == before["malformed"] + 1
    )
    assert (
        sample("jetstream_pin_backend_calls_total", source=images, result="ok")
        == before["listing"] + 1
    )
    assert (
        sample("jetstream_pin_cache_requests_total", cache="image-history", result="hit")
        == before["hits"] + 1
    )
    assert (
        sample("jetstream_pin_admission_duration_seconds_count", outcome="patched")
        == before["latency"] + 2
    )


def test_exposition_is_prometheus_text() -> None:
    metrics.ADMISSIONS.labels("patched", "enrollment").inc(0)
    text = metrics.exposition().decode()
    assert "# TYPE jetstream_pin_admissions_total counter" in text
    assert json.dumps(metrics.CONTENT_TYPE).startswith('"text/plain')


def test_metrics_are_served_on_the_admin_port_only() -> None:
    config = load_config(EXAMPLES / "config.yaml")
    client = DispatchClient(Wiring(config).dispatch(), config.server.port)
    webhook = f"https://localhost:{config.server.port}"
    admin = f"https://localhost:{config.server.admin_port}"
    client.post("/mutate", json=review_of(argo_pod("my-experiment")), base_url=webhook)
    reply = client.get("/metrics", base_url=admin)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == metrics.CONTENT_TYPE
    text = reply.get_data(as_text=True)
    assert "jetstream_pin_admissions_total{" in text
    assert f'jetstream_pin_image_history_age_seconds{{repository="{JETSTREAM}"}}' in text
    assert client.get("/metrics", base_url=webhook).status_code == 404


def test_certificate_expiry_follows_the_file_as_it_rotates(tmp_path: Path) -> None:
    """Alerts need the serving certificate's notAfter, and the new one after a rotation."""
    raw = example_config(tmp_path)
    config = parse_config(raw, tmp_path)
    folder = config.server.cert_file.parent
    admin = DispatchClient(Wiring(config).dispatch(), config.server.port)
    scrape = functools.partial(
        admin.get, "/metrics", base_url=f"https://localhost:{raw['server']['adminPort']}"
    )

    def expiry() -> float | None:
        scrape()
        return REGISTRY.get_sample_value(
            "jetstream_pin_certificate_expiry_timestamp_seconds", {"certificate": "serving"}
        )

    for days in (30, 10):  # the second pair expires sooner: the newest file wins
        bundle = certs.issue(["localhost"], days=days)
        certs.write(bundle, folder)
        not_after = x509.load_pem_x509_certificate(bundle.cert_pem).not_valid_after_utc
        assert expiry() == not_after.timestamp()
        left = not_after - datetime.now(UTC)
        assert timedelta(days=days - 1) < left <= timedelta(days=days)
