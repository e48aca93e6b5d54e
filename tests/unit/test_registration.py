"""Waiting for a serving replica before registering the webhook, at its interface."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from webhook.kube.registration import Readiness, wait_until_serving, with_trust
from webhook.sources import SourceError


class Clock:
    """Time that only moves when the waiter sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_waits_until_one_replica_is_ready() -> None:
    clock = Clock()
    answers = iter([None, Readiness(0, 2), Readiness(0, 2), Readiness(1, 2)])
    seen = wait_until_serving(lambda: next(answers), 60, 2, lambda: clock.now, clock.sleep)
    assert seen == Readiness(1, 2)
    assert clock.slept == [2, 2, 2]  # asked four times: absent, not ready twice, ready


def test_gives_up_at_the_deadline_saying_what_it_saw() -> None:
    clock = Clock()
    with pytest.raises(SourceError, match=r"has 0/2 ready after 10 s; not registering"):
        wait_until_serving(lambda: Readiness(0, 2), 10, 3, lambda: clock.now, clock.sleep)
    assert clock.now == 12  # 0, 3, 6, 9 not ready; 12 past the deadline
    with pytest.raises(SourceError, match="Deployment does not exist after 5 s"):
        wait_until_serving(lambda: None, 5, 5, lambda: clock.now, clock.sleep)


def test_ready_at_once_never_sleeps() -> None:
    clock = Clock()
    wait_until_serving(lambda: Readiness(2, 2), 1, 1, lambda: clock.now, clock.sleep)
    assert clock.slept == []


def test_trust_and_owner_go_on_a_copy() -> None:
    rendered: dict[str, Any] = {
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "jp"},
        "webhooks": [{"name": "a", "clientConfig": {"service": {"name": "jp"}}}, {"name": "b"}],
    }
    owner = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "name": "o"}
    body = with_trust(rendered, b"PEM", owner | {"uid": "u"})
    assert [h["clientConfig"]["caBundle"] for h in body["webhooks"]] == [
        base64.b64encode(b"PEM").decode()
    ] * 2
    assert body["webhooks"][0]["clientConfig"]["service"] == {"name": "jp"}
    assert body["metadata"]["ownerReferences"] == [owner | {"uid": "u"}]
    assert "caBundle" not in rendered["webhooks"][0]["clientConfig"]  # the input is untouched
