"""Every listed experiment decided at once, exactly as the webhook decides its pods.

The report and the status page need a decision per experiment, not per pod.
Asking the enrollment source once per slug would cost one BigQuery call per
experiment, so the listing's enrollment times stand in for the clock and each
image history is read once. The rules, the overrides and the config histories
are the resolver's own, so every answer here is the webhook's answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from webhook.datasets import Dataset
from webhook.pinning import Image, PinDigest, Refusal, parse_pin
from webhook.resolver import Decision, ImageTarget, LookupFailed, Resolver
from webhook.sources import ExperimentLister, PendingLister, SourceError

NOT_ENROLLED_SOURCE = "not-enrolled"


class InventoryFailed(Exception):
    """A listing or an image history could not be read: there is no report to give."""


class UnknownImage(Exception):
    """The image named for a what-if is not one that can carry a breaking tag."""


@dataclass(frozen=True)
class Placement:
    """One experiment and the tooling the webhook gives it (or why it cannot)."""

    slug: str
    enrolled_at: datetime | None  # None: not enrolled yet
    slug_source: str
    config_time: datetime  # the moment its config SHAs are taken at
    decision: Decision | None = None
    error: str = ""

    def digest_for(self, repository: str) -> str | None:
        return self.decision.digest_for(repository) if self.decision else None


@dataclass(frozen=True)
class Inventory:
    taken_at: datetime
    enrollments_source: str
    images: Mapping[str, tuple[Image, ...]]  # repository -> every image, as listed
    breaking_tags: Mapping[str, str | None]
    config_repos: tuple[str, ...]
    placements: tuple[Placement, ...]


class _ListedClock:
    """The listing as an enrollment clock: no lookup per slug."""

    def __init__(self, name: str, times: Mapping[str, datetime | None]) -> None:
        self.name = name
        self._times = times

    def enrolled_at(
        self, slug: str, dataset: Dataset, fresh_since: datetime | None = None
    ) -> datetime | None:
        return self._times.get(slug)


class _Snapshot:
    """An image history read once."""

    def __init__(self, name: str, images: Sequence[Image]) -> None:
        self.name = name
        self._images = tuple(images)

    def images(self) -> Sequence[Image]:
        return self._images


def take_inventory(resolver: Resolver, lister: ExperimentLister) -> Inventory:
    now = resolver.now()
    listed: dict[str, tuple[datetime | None, str]] = {}
    try:
        for row in lister.list_enrolled(resolver.datasets.default):
            listed.setdefault(row.slug, (row.enrolled_at, row.slug_source))
        if isinstance(lister, PendingLister):
            for slug in lister.list_not_enrolled():
                listed.setdefault(slug, (None, NOT_ENROLLED_SOURCE))
    except SourceError as err:
        raise InventoryFailed(f"cannot list experiments: {err}") from err
    images = {repo: _read(target) for repo, target in resolver.images.items()}
    return Inventory(
        taken_at=now,
        enrollments_source=lister.name,
        images=images,
        breaking_tags={repo: t.breaking_tag for repo, t in resolver.images.items()},
        config_repos=tuple(repo.name for repo in resolver.config_repos),
        placements=_decide_all(resolver, lister.name, images, listed, now),
    )


def _read(target: ImageTarget) -> tuple[Image, ...]:
    try:
        return tuple(target.history.images())
    except SourceError as err:
        raise InventoryFailed(f"cannot read the image history: {err}") from err


def _decide_all(
    resolver: Resolver,
    source: str,
    images: Mapping[str, Sequence[Image]],
    listed: Mapping[str, tuple[datetime | None, str]],
    now: datetime,
) -> tuple[Placement, ...]:
    snapshot = Resolver(
        [
            ImageTarget(repo, target.breaking_tag, _Snapshot(target.history.name, images[repo]))
            for repo, target in resolver.images.items()
        ],
        _ListedClock(source, {slug: when for slug, (when, _) in listed.items()}),
        resolver.config_repos,
        resolver.overrides,
        now=lambda: now,
        datasets=resolver.datasets,
    )
    return tuple(
        _place(snapshot, slug, when, slug_source, now)
        for slug, (when, slug_source) in listed.items()
    )


def _place(
    resolver: Resolver, slug: str, when: datetime | None, slug_source: str, now: datetime
) -> Placement:
    placement = Placement(slug, when, slug_source, config_time=when or now)
    try:
        decision = resolver.decide(resolver.facts_for_slug(slug))
    except (Refusal, LookupFailed) as err:
        return replace(placement, error=str(err))
    return replace(placement, decision=decision, config_time=decision.enrolled_at or now)


@dataclass(frozen=True)
class Hypothesis:
    """The inventory again, as if one more image carried the breaking tag."""

    repository: str
    image: Image
    breaking_tag: str
    already_breaking: bool
    placements: tuple[Placement, ...]


def find_image(inventory: Inventory, digest_text: str) -> tuple[str, Image]:
    """The repository and image a digest (or a prefix of 12+ hex characters) names."""
    try:
        pin = parse_pin(digest_text, "--what-if-breaking")
    except Refusal as err:
        raise UnknownImage(str(err)) from None
    if not isinstance(pin, PinDigest):
        raise UnknownImage("--what-if-breaking needs an image digest, not 'latest'")
    found = {
        (repo, image.digest): image
        for repo, images in inventory.images.items()
        for image in images
        if image.digest.removeprefix("sha256:").startswith(pin.prefix)
    }
    if not found:
        raise UnknownImage(f"sha256:{pin.prefix} is not an image of any configured repository")
    if len(found) > 1:
        raise UnknownImage(f"sha256:{pin.prefix} matches {len(found)} images; give more hex digits")
    (repo, _), image = next(iter(found.items()))
    if image.index_child:
        raise UnknownImage(
            f"{image.digest} is a platform manifest of a multi-arch index, never chosen on its "
            "own: name the index"
        )
    return repo, image


def what_if_breaking(resolver: Resolver, inventory: Inventory, digest_text: str) -> Hypothesis:
    repo, image = find_image(inventory, digest_text)
    tag = inventory.breaking_tags[repo]
    if not tag:
        raise UnknownImage(f"{repo} has no breaking tag configured (breakingTag: null)")
    tagged = replace(image, tags=image.tags | {tag})
    images = dict(inventory.images)
    images[repo] = tuple(tagged if i.digest == image.digest else i for i in images[repo])
    listed = {p.slug: (p.enrolled_at, p.slug_source) for p in inventory.placements}
    placements = _decide_all(
        resolver, inventory.enrollments_source, images, listed, inventory.taken_at
    )
    return Hypothesis(repo, tagged, tag, tag in image.tags, placements)
