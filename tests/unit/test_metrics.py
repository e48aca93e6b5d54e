"""Metrics move with what the webhook does: admissions, backend calls, cache hits."""

from __future__ import annotations

import json

from prometheus_client import REGISTRY

from tests.builders import EXAMPLES, JETSTREAM, argo_pod, review_of
from tests.kube import apply_response
from webhook import metrics
from webhook.config import load_config
from webhook.wiring import Wiring


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_admissions_backend_calls_and_cache_hits_are_counted() -> None:
    client = Wiring(load_config(EXAMPLES / "config.yaml")).app().test_client()
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
    first = client.post("/mutate", json=review).get_json()
    patched = apply_response(review["request"]["object"], first)
    client.post(
        "/mutate", json=review_of(argo_pod("android-onboarding-notification-permission-v2"))
    )
    client.post("/mutate", json=review_of(patched))
    client.post("/mutate", data="{", content_type="application/json")

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
