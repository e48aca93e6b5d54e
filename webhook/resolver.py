"""Asks the sources for facts and the pure rules for a decision.

This is the only place where lookups happen during an admission. Every
lookup goes through `_lookup`, which turns any failure into a `LookupFailed`
naming the source, so the failure policy is applied in exactly one way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from webhook.deadline import NeedsLookup, entering
from webhook.pinning import (
    EmptyHistory,
    ImageChoice,
    Pin,
    PinDigest,
    PinLatest,
    Reason,
    Refusal,
    image_at,
    image_by_digest,
    newest_image,
    parse_pin,
    pod_pin,
    pod_reason,
    validate_slug,
)
from webhook.pods import ImageRef, PodFacts, Target
from webhook.sources import (
    ConfigHistory,
    EnrollmentClock,
    ImageHistory,
    NoOverrides,
    OverrideSource,
    SourceError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ImageTarget:
    repository: str
    breaking_tag: str | None
    history: ImageHistory


@dataclass(frozen=True)
class ConfigRepo:
    name: str
    env: str
    history: ConfigHistory


@dataclass(frozen=True)
class Decision:
    """What a pod should run; plain data, written to the pod by `mutation`."""

    slug: str
    reason: Reason
    enrolled_at: datetime | None
    enrollment_consulted: bool
    choices: Mapping[str, ImageChoice]
    shas: Mapping[str, str]
    pin: Pin | None = None

    def digest_for(self, repository: str) -> str | None:
        choice = self.choices.get(repository)
        return choice.image.digest if choice else None


class LookupFailed(Exception):
    def __init__(self, slug: str, error: SourceError) -> None:
        super().__init__(f"cannot pin experiment {slug!r}: {error.source} failed: {error.cause}")
        self.slug = slug
        self.source = error.source
        self.cause = error.cause


def utc_now() -> datetime:
    return datetime.now(UTC)


class Resolver:
    def __init__(
        self,
        images: Sequence[ImageTarget],
        enrollments: EnrollmentClock,
        config_repos: Sequence[ConfigRepo] = (),
        overrides: OverrideSource | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.images = {target.repository: target for target in images}
        self.enrollments = enrollments
        self.config_repos = tuple(config_repos)
        self.overrides = overrides or NoOverrides()
        self.now = now

    @property
    def repositories(self) -> list[str]:
        return list(self.images)

    def decide(self, facts: PodFacts) -> Decision:
        if facts.slug is None:
            raise ValueError("decide() needs a pod with a slug")
        slug = validate_slug(facts.slug)
        pin = self._pin(facts, slug)
        pending = list(dict.fromkeys(t.repository for t in facts.targets if not t.pinned))
        needs_time = not isinstance(pin, PinLatest) and (
            bool(self.config_repos) or (bool(pending) and not isinstance(pin, PinDigest))
        )
        enrolled_at: datetime | None = None
        when: datetime | None = None
        if needs_time:
            enrolled_at = self._lookup(
                slug, self.enrollments.name, lambda: self.enrollments.enrolled_at(slug)
            )
            when = enrolled_at or self.now()
        choices = {repo: self._choose(slug, self.images[repo], pin, when) for repo in pending}
        # Config repos follow the enrollment time; not enrolled (or latest) means the tip.
        shas = {
            repo.name: self._lookup(slug, repo.history.name, _sha_at(repo.history, enrolled_at))
            for repo in self.config_repos
        }
        reason = pod_reason(
            pin,
            all_targets_pinned=not pending,
            enrolled=enrolled_at is not None or not needs_time,
            rules=[choice.rule for choice in choices.values()],
        )
        return Decision(slug, reason, enrolled_at, needs_time, choices, shas, pin)

    def facts_for_slug(self, slug: str, pin: str | None = None) -> PodFacts:
        """A pod running every configured image for `slug`: what `explain` reasons about."""
        targets = tuple(
            Target("containers", i, f"c{i}", f"{repo}:latest", ImageRef(repo, "latest", None), repo)
            for i, repo in enumerate(self.images)
        )
        labels = {"jetstream/pin": pin} if pin is not None else {}
        return PodFacts("", "", labels, {}, targets, slug, "--slug")

    def _pin(self, facts: PodFacts, slug: str) -> Pin | None:
        own = pod_pin(facts.pin_label, facts.pin_digest_annotation)
        if own is not None:
            return own
        if facts.workflow:
            workflow = facts.workflow
            value = self._lookup(
                slug,
                self.overrides.name,
                lambda: self.overrides.workflow_pin(facts.namespace, workflow),
            )
            if value is not None:
                return parse_pin(value, f"label jetstream/pin of Workflow {workflow}")
        value = self._lookup(slug, self.overrides.name, lambda: self.overrides.slug_pin(slug))
        if value is not None:
            return parse_pin(value, f"overrides entry for {slug}")
        return None

    def _choose(
        self, slug: str, target: ImageTarget, pin: Pin | None, when: datetime | None
    ) -> ImageChoice:
        history = target.history
        images = self._lookup(slug, history.name, history.images)

        def choose() -> ImageChoice:
            if isinstance(pin, PinDigest):
                return image_by_digest(images, pin)
            if isinstance(pin, PinLatest) or when is None:
                return newest_image(images)
            return image_at(images, when, target.breaking_tag)

        return self._lookup(slug, history.name, choose)

    def _lookup(self, slug: str, source: str, call: Callable[[], T]) -> T:
        entering(source)
        try:
            return call()
        except SourceError as err:
            raise LookupFailed(slug, err) from err
        except EmptyHistory as err:
            raise LookupFailed(slug, SourceError(source, str(err))) from err
        except (LookupFailed, Refusal, NeedsLookup):
            raise
        except Exception as err:
            log.exception("unexpected error from %s", source)
            raise LookupFailed(slug, SourceError(source, type(err).__name__)) from err


def _sha_at(history: ConfigHistory, when: datetime | None) -> Callable[[], str]:
    return lambda: history.sha_at(when)
