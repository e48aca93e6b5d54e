"""The resolution rules of docs/design.md as pure functions over plain data.

Nothing in this module performs I/O or reads a clock: callers hand in the
facts (image history, enrollment time, "now"), so every rule can be tested
exhaustively and the webhook, the CLI and the report all decide alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

SLUG_RULE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_DIGEST_PREFIX = re.compile(r"(?:sha256:)?([0-9a-f]{12,64})")
_COMMIT_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # git's SHA-1 or SHA-256 object names
_NOT_TABLE_CHAR = re.compile(r"[^A-Za-z0-9_]")
TABLE_PREFIX = "enrollments_"

PIN_LATEST = "latest"
ACCEPTED_PIN_FORMS = (
    "'latest' or a sha256 digest prefix of 12 to 63 lowercase hex characters "
    "(a full 'sha256:<64 hex>' digest goes in the annotation jetstream/pin-digest)"
)


class Reason(StrEnum):
    """Why a pod got the tooling it got; written to jetstream/pin-reason."""

    ENROLLMENT = "enrollment"
    BREAKING = "breaking"
    LATEST = "latest"
    OVERRIDE = "override"
    NOT_ENROLLED = "not-enrolled"
    ALREADY_PINNED = "already-pinned"
    NOT_PINNED_COMMAND = "not-pinned-command"


class Refusal(Exception):
    """A request that retrying cannot fix: the pod is refused with `code`."""

    code = 400
    reason = "BadRequest"


class InvalidSlug(Refusal):
    pass


class InvalidPin(Refusal):
    pass


class UnknownDigest(Refusal):
    code = 422
    reason = "Invalid"


class EmptyHistory(ValueError):
    """A history with no usable entry: the backend answered, but with nothing."""


@dataclass(frozen=True)
class Image:
    """One pushed image; `index_child` marks a platform manifest of a multi-arch index."""

    digest: str
    uploaded: datetime
    tags: frozenset[str] = frozenset()
    index_child: bool = False


@dataclass(frozen=True)
class Commit:
    sha: str
    committed: datetime


@dataclass(frozen=True)
class PinLatest:
    origin: str


@dataclass(frozen=True)
class PinDigest:
    prefix: str
    origin: str


Pin = PinLatest | PinDigest


class ImageRule(StrEnum):
    """Which branch of rule 5 chose the image; `explain` prints it."""

    AT_OR_BEFORE = "newest image uploaded at or before the enrollment time"
    OLDEST = "no image is that old: the oldest image"
    BREAKING = "a 'breaking' image was uploaded after the enrollment time: moved up to it"
    NEWEST = "the newest image"
    DIGEST = "the image named by the override"


@dataclass(frozen=True)
class ImageChoice:
    image: Image
    rule: ImageRule
    effective_time: datetime | None


def is_digest(value: str) -> bool:
    """`sha256:` and 64 lowercase hex digits: an image digest as registries write it."""
    return _DIGEST.fullmatch(value) is not None


def is_commit_sha(value: str) -> bool:
    """A full commit id in lowercase hex (SHA-1 or SHA-256)."""
    return _COMMIT_SHA.fullmatch(value) is not None


def describe_value(value: str, limit: int = 80) -> str:
    """Quote untrusted text for a message: printable ASCII, at most `limit` + 3 characters."""
    shown = ascii(value[:limit])
    if len(value) > limit or len(shown) > limit + 2:
        return shown[:limit] + "..."
    return shown


def is_valid_slug(text: str) -> bool:
    return _SLUG.fullmatch(text) is not None


def validate_slug(slug: str) -> str:
    if not is_valid_slug(slug):
        raise InvalidSlug(
            f"experiment slug {describe_value(slug)} is not valid: it must match {SLUG_RULE}"
        )
    return slug


def enrollments_table(slug: str) -> str:
    """Jetstream's table name: every character outside [A-Za-z0-9_] becomes '_'."""
    return TABLE_PREFIX + _NOT_TABLE_CHAR.sub("_", slug)


def parse_pin(value: str, origin: str) -> Pin:
    """Read a `jetstream/pin` value (label, Workflow label or ConfigMap entry)."""
    if value == PIN_LATEST:
        return PinLatest(origin)
    match = _DIGEST_PREFIX.fullmatch(value)
    if match:
        return PinDigest(match.group(1), origin)
    raise InvalidPin(
        f"{origin} has the value {describe_value(value)}; accepted: {ACCEPTED_PIN_FORMS}"
    )


def parse_digest_annotation(value: str, origin: str) -> PinDigest:
    if _DIGEST.fullmatch(value) is None:
        raise InvalidPin(
            f"{origin} has the value {describe_value(value)}; it must be 'sha256:<64 hex>'"
        )
    return PinDigest(value.removeprefix("sha256:"), origin)


def pod_pin(label: str | None, digest_annotation: str | None) -> Pin | None:
    """The pod's own pin; the annotation carries full digests that labels cannot hold."""
    from_label = parse_pin(label, "pod label jetstream/pin") if label is not None else None
    if digest_annotation is None:
        return from_label
    from_annotation = parse_digest_annotation(
        digest_annotation, "pod annotation jetstream/pin-digest"
    )
    if from_label is None or (
        isinstance(from_label, PinDigest) and from_annotation.prefix.startswith(from_label.prefix)
    ):
        return from_annotation
    raise InvalidPin(
        "pod label jetstream/pin and annotation jetstream/pin-digest disagree; remove one of them"
    )


def candidates(images: Iterable[Image]) -> list[Image]:
    """Images an experiment may be pinned to: never the children of a multi-arch index."""
    return [image for image in images if not image.index_child]


def upload_order(image: Image) -> tuple[datetime, str]:
    """Images in the order they were pushed; the digest breaks a tie, so every replica agrees."""
    return (image.uploaded, image.digest)


def uploaded_by(images: Sequence[Image], moment: datetime) -> Sequence[Image]:
    """The history as it stood at `moment` (every image, if none is that old)."""
    seen = [image for image in images if image.uploaded <= moment]
    return seen if any(not image.index_child for image in seen) else images


def newest_image(images: Iterable[Image]) -> ImageChoice:
    pool = candidates(images)
    if not pool:
        raise EmptyHistory("the image history has no images")
    return ImageChoice(max(pool, key=upload_order), ImageRule.NEWEST, None)


def image_at(images: Iterable[Image], when: datetime, breaking_tag: str | None) -> ImageChoice:
    """Rule 5: the image current at `when`, moved up to a later breaking release."""
    pool = candidates(images)
    if not pool:
        raise EmptyHistory("the image history has no images")
    effective = when
    rule = ImageRule.AT_OR_BEFORE
    if breaking_tag:
        breaking = [i for i in pool if breaking_tag in i.tags and i.uploaded > when]
        if breaking:
            effective = max(breaking, key=upload_order).uploaded
            rule = ImageRule.BREAKING
    old_enough = [image for image in pool if image.uploaded <= effective]
    if old_enough:
        return ImageChoice(max(old_enough, key=upload_order), rule, effective)
    return ImageChoice(min(pool, key=upload_order), ImageRule.OLDEST, effective)


def image_by_digest(images: Iterable[Image], pin: PinDigest) -> ImageChoice:
    """The one image whose digest starts with the pinned prefix."""
    matches = {
        i.digest: i for i in images if i.digest.removeprefix("sha256:").startswith(pin.prefix)
    }
    if not matches:
        raise UnknownDigest(
            f"{pin.origin} names sha256:{pin.prefix}, which is not an image in the registry"
        )
    if len(matches) > 1:
        raise UnknownDigest(
            f"{pin.origin} names sha256:{pin.prefix}, which matches {len(matches)} images; "
            "give more hex digits"
        )
    return ImageChoice(next(iter(matches.values())), ImageRule.DIGEST, None)


def commit_at(commits: Sequence[Commit], when: datetime | None) -> Commit:
    """Rule 6: the tip of the branch at `when` (None: now); the oldest if none is that old."""
    if not commits:
        raise EmptyHistory("the commit history has no commits")
    if when is None:
        return max(commits, key=lambda c: c.committed)
    old_enough = [c for c in commits if c.committed <= when]
    if old_enough:
        return max(old_enough, key=lambda c: c.committed)
    return min(commits, key=lambda c: c.committed)


def pod_reason(
    pin: Pin | None, all_targets_pinned: bool, enrolled: bool, rules: Iterable[ImageRule]
) -> Reason:
    """One reason per pod, the most telling one first."""
    if all_targets_pinned:
        return Reason.ALREADY_PINNED
    if isinstance(pin, PinLatest):
        return Reason.LATEST
    if isinstance(pin, PinDigest):
        return Reason.OVERRIDE
    if not enrolled:
        return Reason.NOT_ENROLLED
    if ImageRule.BREAKING in set(rules):
        return Reason.BREAKING
    return Reason.ENROLLMENT
