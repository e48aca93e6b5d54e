"""Every listed experiment decided at once, exactly as the webhook decides its pods.

The report and the status page need a decision per experiment, not per pod.
Asking the enrollment source once per slug would cost one BigQuery call per
experiment, so each allowed dataset's listing stands in for the clock and each
image history is read once. The rules, the overrides and the config histories
are the resolver's own, so every answer here is the webhook's answer.

A BigQuery listing names tables, not slugs (webhook.core.slugs): a table is shown
under its real slug when that is known, else by its name. One that is known
only by name is decided only when no overrides entry names a slug of that
table, so its decision is the same whatever its slug is.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from webhook.admission.resolver import ImageTarget, LookupFailed, Resolver
from webhook.core.datasets import Dataset
from webhook.core.decision import Decision
from webhook.core.pinning import Image, PinDigest, Refusal, enrollments_table, parse_pin
from webhook.core.slugs import SlugSource, find_slug, name_is_exact, table_suffix
from webhook.sources import (
    EnrolledExperiment,
    ExperimentLister,
    OverrideLister,
    OverrideSource,
    PendingLister,
    SourceError,
)
from webhook.sources.descriptions import Descriptions
from webhook.sources.nowait import NeverWaits

NOT_ENROLLED_SOURCE = str(SlugSource.NOT_ENROLLED)


class InventoryFailed(Exception):
    """No listing or an image history could be read: there is no report to give."""


class UnknownImage(Exception):
    """The image named for a what-if is not one that can carry a breaking tag."""


@dataclass(frozen=True)
class Placement:
    """One experiment (one enrollments table of one dataset) and the tooling the webhook gives it.

    `slug` None: only the table is known (`candidates`: the known slugs that
    share it, when several do).
    """

    dataset: Dataset
    table: str
    slug: str | None
    enrolled_at: datetime | None  # None: not enrolled yet (or its table could not be read)
    slug_source: str
    config_time: datetime  # the moment its config SHAs are taken at
    decision: Decision | None = None
    error: str = ""
    candidates: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """What the experiment is called: its slug, else its table."""
        return self.slug if self.slug is not None else self.table

    @property
    def key(self) -> tuple[Dataset, str]:
        return (self.dataset, self.label)

    @property
    def decided_as(self) -> str:
        """The slug it is decided under: its own, else its table's suffix.

        A table known only by name is decided only when no overrides entry
        names any slug of it (`_undecidable`), so every slug it may be decides
        alike; its suffix stands for all of them.
        """
        return self.slug if self.slug is not None else table_suffix(self.table)

    @property
    def time_unknown(self) -> bool:
        """Listed with a table whose enrollment time could not be read (not "not enrolled")."""
        return self.enrolled_at is None and self.slug_source != NOT_ENROLLED_SOURCE

    def digest_for(self, repository: str) -> str | None:
        return self.decision.digest_for(repository) if self.decision else None


@dataclass(frozen=True)
class DatasetListing:
    """One allowed dataset: how many experiments it lists, or why it could not be listed."""

    dataset: Dataset
    experiments: int
    error: str = ""


@dataclass(frozen=True)
class Inventory:
    taken_at: datetime
    enrollments_source: str
    images: Mapping[str, tuple[Image, ...]]  # repository -> every image, as listed
    breaking_tags: Mapping[str, str | None]
    config_repos: tuple[str, ...]
    placements: tuple[Placement, ...]
    datasets: tuple[DatasetListing, ...] = ()


class _ListedClock(NeverWaits):
    """The listings as an enrollment clock: no lookup per slug."""

    def __init__(self, name: str, times: Mapping[tuple[Dataset, str], datetime | None]) -> None:
        self.name = name
        self._times = times  # (dataset, Placement.decided_as) -> time

    def enrolled_at(
        self, slug: str, dataset: Dataset, fresh_since: datetime | None = None
    ) -> datetime | None:
        return self._times.get((dataset, slug))


class _Snapshot(NeverWaits):
    """An image history read once."""

    def __init__(self, name: str, images: Sequence[Image]) -> None:
        self.name = name
        self._images = tuple(images)

    def images(self) -> Sequence[Image]:
        return self._images


def take_inventory(
    resolver: Resolver,
    lister: ExperimentLister,
    descriptions: Descriptions | None = None,
    known_slugs: Iterable[str] = (),
) -> Inventory:
    """Every allowed dataset listed (the default one first) and decided.

    `descriptions`: where tables known only by name have their slug read
    (BigQuery); `known_slugs`: real slugs seen elsewhere (admitted pods), which
    with the overrides entries name the tables they match.
    """
    now = resolver.now()
    rows: list[tuple[Dataset, EnrolledExperiment]] = []
    listings = []
    policy = resolver.datasets
    for dataset in sorted(policy.allowed, key=lambda d: (d != policy.default, d)):
        try:
            listed = _list(lister, dataset)
        except SourceError as err:
            listings.append(DatasetListing(dataset, 0, str(err)))
            continue
        listings.append(DatasetListing(dataset, len(listed)))
        rows += [(dataset, row) for row in listed]
    if all(listing.error for listing in listings):
        raise InventoryFailed(
            "cannot list experiments: " + "; ".join(listing.error for listing in listings)
        )
    images = {repo: _read(target) for repo, target in resolver.images.items()}
    placements = _identify(rows, resolver.overrides, descriptions, known_slugs, now)
    return Inventory(
        taken_at=now,
        enrollments_source=lister.name,
        images=images,
        breaking_tags={repo: t.breaking_tag for repo, t in resolver.images.items()},
        config_repos=tuple(repo.name for repo in resolver.config_repos),
        placements=_decide_all(resolver, lister.name, images, placements, now),
        datasets=tuple(listings),
    )


def _list(lister: ExperimentLister, dataset: Dataset) -> list[EnrolledExperiment]:
    """The dataset's tables, and (static file) the experiments known but not enrolled.

    A BigQuery listing has one row per table; the static file one per slug.
    """
    rows = {row.slug or row.table: row for row in lister.list_enrolled(dataset)}
    if isinstance(lister, PendingLister):
        for slug in lister.list_not_enrolled():
            table = enrollments_table(slug)
            rows.setdefault(slug, EnrolledExperiment(table, slug, None, NOT_ENROLLED_SOURCE))
    return list(rows.values())


def _read(target: ImageTarget) -> tuple[Image, ...]:
    try:
        return tuple(target.history.images())
    except SourceError as err:
        raise InventoryFailed(f"cannot read the image history: {err}") from err


def _identify(
    rows: Sequence[tuple[Dataset, EnrolledExperiment]],
    overrides: OverrideSource,
    descriptions: Descriptions | None,
    known_slugs: Iterable[str],
    now: datetime,
) -> list[Placement]:
    """Each listed table with its slug where one is known, and why it cannot be decided if so."""
    pinned: Collection[str] = ()
    pinned_error = ""
    try:
        pinned = overrides.pinned_slugs() if isinstance(overrides, OverrideLister) else ()
    except SourceError as err:
        pinned_error = str(err)
    unnamed = [(d, r.table) for d, r in rows if r.slug is None and not name_is_exact(r.table)]
    described = descriptions.of(unnamed) if descriptions is not None and unnamed else {}
    known = {*known_slugs, *pinned}
    placements = []
    for dataset, row in rows:
        placement = Placement(
            dataset, row.table, row.slug, row.enrolled_at, row.slug_source,
            config_time=row.enrolled_at or now, error=row.error,
        )  # fmt: skip
        if row.slug is None:
            found = find_slug(row.table, described.get((dataset, row.table)), known)
            placement = replace(
                placement,
                slug=found.slug,
                slug_source=str(found.source),
                candidates=found.candidates,
            )
        if placement.slug is None and not placement.error:
            placement = replace(placement, error=_undecidable(placement, pinned, pinned_error))
        placements.append(placement)
    return placements


def _undecidable(placement: Placement, pinned: Collection[str], pinned_error: str) -> str:
    """Why a table known only by name cannot be decided ("" when it can: no entry names it)."""
    if pinned_error:
        return (
            f"only the table {placement.table} is known, and the overrides entries could not be "
            f"read to tell whether one applies to it ({pinned_error})"
        )
    entries = [slug for slug in placement.candidates if slug in pinned]
    if entries:
        return (
            f"only the table {placement.table} is known, which may be "
            f"{' or '.join(placement.candidates)}; the overrides entries for "
            f"{', '.join(entries)} may apply or not: its description, which names the real "
            "slug, could not be read"
        )
    return ""


def _decide_all(
    resolver: Resolver,
    source: str,
    images: Mapping[str, Sequence[Image]],
    placements: Sequence[Placement],
    now: datetime,
) -> tuple[Placement, ...]:
    snapshot = Resolver(
        [
            ImageTarget(repo, target.breaking_tag, _Snapshot(target.history.name, images[repo]))
            for repo, target in resolver.images.items()
        ],
        _ListedClock(source, {(p.dataset, p.decided_as): p.enrolled_at for p in placements}),
        resolver.config_repos,
        resolver.overrides,
        now=lambda: now,
        datasets=resolver.datasets,
    )
    return tuple(_place(snapshot, placement, now) for placement in placements)


def _place(resolver: Resolver, placement: Placement, now: datetime) -> Placement:
    if placement.error:
        return placement
    facts = resolver.facts_for_slug(placement.decided_as, dataset=placement.dataset)
    try:
        decision = resolver.decide(facts)
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
    undecided = [replace(p, decision=None) for p in inventory.placements]
    placements = _decide_all(
        resolver, inventory.enrollments_source, images, undecided, inventory.taken_at
    )
    return Hypothesis(repo, tagged, tag, tag in image.tags, placements)
