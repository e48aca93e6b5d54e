"""An experiment's decision as recorded on its Argo Workflow, and read back.

Jetstream decides an experiment's tooling once, when it submits the
Workflow, and every pod of that experiment in that Workflow runs it. The
webhook does the same: the first pod's decision is written onto the
Workflow (one annotation per experiment, first writer wins), and every later
pod of that experiment, on any replica, after any restart, reads it back.
This module is the format: plain JSON in an annotation value, pure, no I/O.

The key is derived from the dataset and slug (a slug can be 200 characters,
an annotation name at most 63), and the value names both, so a reader of
`kubectl get workflow -o yaml` sees what each annotation is about.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from webhook.core.datasets import Dataset
from webhook.core.pinning import (
    Image,
    ImageChoice,
    ImageRule,
    Pin,
    PinDigest,
    PinLatest,
    Reason,
)
from webhook.core.times import NotATime, parse_rfc3339

KEY_PREFIX = "jetstream/decision-"
VERSION = 1


class MalformedRecord(ValueError):
    """An annotation that is not a decision this webhook wrote (edited by hand, or newer)."""


@dataclass(frozen=True)
class ExperimentDecision:
    """An experiment's tooling, independent of any one pod (which targets it pins, say)."""

    slug: str
    dataset: Dataset
    reason: Reason  # as for a pod none of whose targets is given by digest
    enrolled_at: datetime | None
    enrollment_consulted: bool
    choices: Mapping[str, ImageChoice]  # every configured repository
    shas: Mapping[str, str]
    pin: Pin | None = None


def record_key(dataset: Dataset, slug: str) -> str:
    """The annotation key for one experiment: `jetstream/decision-<16 hex>`."""
    digest = hashlib.sha256(f"{dataset}.{slug}".encode()).hexdigest()
    return KEY_PREFIX + digest[:16]


def _time(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment else None


def _parse_time(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise MalformedRecord(f"{what} must be an RFC 3339 time")
    try:
        return parse_rfc3339(value)
    except NotATime as err:
        raise MalformedRecord(f"{what} must be an RFC 3339 time with a zone ({err})") from None


def _pin_text(pin: Pin | None) -> str | None:
    if isinstance(pin, PinLatest):
        return "latest"
    if isinstance(pin, PinDigest):
        return f"sha256:{pin.prefix}"
    return None


def encode(decision: ExperimentDecision, pod: str, decided_at: datetime) -> str:
    """The annotation value: compact JSON, stable key order."""
    body: dict[str, Any] = {
        "v": VERSION,
        "slug": decision.slug,
        "dataset": str(decision.dataset),
        "reason": str(decision.reason),
        "enrolledAt": _time(decision.enrolled_at),
        "consulted": decision.enrollment_consulted,
        "images": {
            repo: {
                "digest": choice.image.digest,
                "uploaded": _time(choice.image.uploaded),
                "rule": choice.rule.name,
                "effective": _time(choice.effective_time),
            }
            for repo, choice in decision.choices.items()
        },
        "shas": dict(decision.shas),
        "pin": _pin_text(decision.pin),
        "pinOrigin": decision.pin.origin if decision.pin else None,
        "decidedAt": _time(decided_at),
        "firstPod": pod,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def decode(text: str) -> ExperimentDecision:
    """Read an annotation value written by `encode`; MalformedRecord naming what is wrong."""
    try:
        body = json.loads(text)
    except ValueError:
        raise MalformedRecord("not JSON") from None
    if not isinstance(body, dict) or body.get("v") != VERSION:
        raise MalformedRecord(f"not a version {VERSION} decision")
    try:
        dataset = Dataset.parse(_string(body, "dataset"))
        reason = Reason(_string(body, "reason"))
    except ValueError as err:
        raise MalformedRecord(str(err)) from None
    enrolled = body.get("enrolledAt")
    consulted = body.get("consulted")
    if not isinstance(consulted, bool):
        raise MalformedRecord("consulted must be true or false")
    return ExperimentDecision(
        slug=_string(body, "slug"),
        dataset=dataset,
        reason=reason,
        enrolled_at=None if enrolled is None else _parse_time(enrolled, "enrolledAt"),
        enrollment_consulted=consulted,
        choices=_choices(body.get("images")),
        shas=_shas(body.get("shas")),
        pin=_pin(body.get("pin"), body.get("pinOrigin")),
    )


def _string(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise MalformedRecord(f"{key} must be a string")
    return value


def _choices(raw: Any) -> dict[str, ImageChoice]:
    if not isinstance(raw, dict):
        raise MalformedRecord("images must be an object")
    choices = {}
    for repo, entry in raw.items():
        if not isinstance(entry, dict):
            raise MalformedRecord(f"images[{repo}] must be an object")
        try:
            rule = ImageRule[_string(entry, "rule")]
        except KeyError:
            raise MalformedRecord(f"images[{repo}].rule is not a known rule") from None
        effective = entry.get("effective")
        image = Image(_string(entry, "digest"), _parse_time(entry.get("uploaded"), "uploaded"))
        choices[str(repo)] = ImageChoice(
            image, rule, None if effective is None else _parse_time(effective, "effective")
        )
    return choices


def _shas(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise MalformedRecord("shas must map config repos to commit SHAs")
    return {str(k): v for k, v in raw.items()}


def _pin(text: Any, origin: Any) -> Pin | None:
    if text is None:
        return None
    if not isinstance(origin, str):
        raise MalformedRecord("pinOrigin must be a string")
    if text == "latest":
        return PinLatest(origin)
    if isinstance(text, str) and text.startswith("sha256:"):
        return PinDigest(text.removeprefix("sha256:"), origin)
    raise MalformedRecord("pin must be 'latest' or a sha256 digest")
