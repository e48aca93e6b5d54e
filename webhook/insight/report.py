"""Which experiments run which tooling: the inventory grouped by image, and what would move.

Pure functions over an `Inventory` (plain data): the same grouping feeds the
terminal table, `--json` and the status page, so they can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from webhook.core.pinning import Image, upload_order
from webhook.core.slugs import SlugSource
from webhook.core.times import format_rfc3339
from webhook.insight.inventory import DatasetListing, Hypothesis, Inventory, Placement

SHORT_DIGEST = 12
SHORT_SHA = 10
MATCHED_MARK = "~"
MATCHED_NOTE = (
    "slug matched to its enrollments table by an overrides entry or an admitted pod; "
    "the table's description (the real slug) could not be read"
)
TABLE_ONLY_NOTE = (
    "only the enrollments table is known (its description could not be read and no overrides "
    "entry or admitted pod names a slug of it): each '_' may stand for '-', '.' or '_'. It is "
    "decided only when no overrides entry names a slug of it, so its tooling is the same "
    "whatever its slug"
)


@dataclass(frozen=True)
class ShaRange:
    """The config commits a version's experiments use, oldest first (by when they apply)."""

    first: str
    last: str
    count: int


@dataclass(frozen=True)
class Version:
    """One image and the experiments the webhook pins to it."""

    image: Image
    breaking: bool
    experiments: tuple[Placement, ...]
    shas: Mapping[str, ShaRange]


@dataclass(frozen=True)
class RepositoryReport:
    repository: str
    breaking_tag: str | None
    versions: tuple[Version, ...]  # newest first


@dataclass(frozen=True)
class Report:
    taken_at: datetime
    enrollments_source: str
    config_repos: tuple[str, ...]
    repositories: tuple[RepositoryReport, ...]
    unresolved: tuple[Placement, ...]  # listed, but the webhook would refuse or fail them
    datasets: tuple[DatasetListing, ...] = ()

    @property
    def experiment_count(self) -> int:
        return len({p.key for r in self.repositories for v in r.versions for p in v.experiments})

    @property
    def several_datasets(self) -> bool:
        """More than one dataset is listed: each experiment shows its own."""
        return len(self.datasets) > 1


@dataclass(frozen=True)
class Move:
    placement: Placement
    before: Image
    after: Image


@dataclass(frozen=True)
class WhatIf:
    repository: str
    image: Image
    breaking_tag: str
    already_breaking: bool
    moves: tuple[Move, ...]


def _by_enrollment(placement: Placement) -> tuple[bool, datetime, str, str]:
    when = placement.enrolled_at or datetime.max.replace(tzinfo=UTC)
    return (placement.enrolled_at is None, when, placement.label, str(placement.dataset))


def build_report(inventory: Inventory) -> Report:
    decided = [p for p in inventory.placements if p.decision is not None]
    repositories = []
    for repo, images in inventory.images.items():
        tag = inventory.breaking_tags.get(repo)
        on: dict[str, list[Placement]] = {}
        for placement in sorted(decided, key=_by_enrollment):
            digest = placement.digest_for(repo)
            if digest is not None:
                on.setdefault(digest, []).append(placement)
        # Every candidate, plus any image an override names directly (even an index child).
        shown = [i for i in images if not i.index_child or i.digest in on]
        versions = tuple(
            Version(
                image,
                bool(tag) and tag in image.tags,
                tuple(on.get(image.digest, ())),
                sha_ranges(on.get(image.digest, ()), inventory.config_repos),
            )
            for image in sorted(shown, key=upload_order, reverse=True)
        )
        repositories.append(RepositoryReport(repo, tag, versions))
    unresolved = tuple(
        sorted((p for p in inventory.placements if p.decision is None), key=_by_enrollment)
    )
    return Report(
        inventory.taken_at,
        inventory.enrollments_source,
        inventory.config_repos,
        tuple(repositories),
        unresolved,
        inventory.datasets,
    )


def sha_ranges(placements: Sequence[Placement], config_repos: Sequence[str]) -> dict[str, ShaRange]:
    """Per config repo: the commits used, ordered by the time each was taken at."""
    ranges: dict[str, ShaRange] = {}
    for name in config_repos:
        timed = sorted(
            (p.config_time, p.decision.shas[name])
            for p in placements
            if p.decision is not None and name in p.decision.shas
        )
        if timed:
            distinct = list(dict.fromkeys(sha for _, sha in timed))
            ranges[name] = ShaRange(distinct[0], distinct[-1], len(distinct))
    return ranges


def what_if(inventory: Inventory, hypothesis: Hypothesis) -> WhatIf:
    """The experiments whose image differs once the hypothetical breaking tag exists."""
    repo = hypothesis.repository
    images = {i.digest: i for i in inventory.images[repo]} | {
        hypothesis.image.digest: hypothesis.image
    }
    before = {p.key: p.digest_for(repo) for p in inventory.placements}
    moves = []
    for placement in sorted(hypothesis.placements, key=_by_enrollment):
        old, new = before.get(placement.key), placement.digest_for(repo)
        if old is not None and new is not None and old != new:
            moves.append(Move(placement, images[old], images[new]))
    return WhatIf(
        repo, hypothesis.image, hypothesis.breaking_tag, hypothesis.already_breaking, tuple(moves)
    )


# --- JSON -------------------------------------------------------------------------------------


def _time(moment: datetime | None) -> str | None:
    return format_rfc3339(moment) if moment is not None else None


def image_json(image: Image) -> dict[str, Any]:
    return {
        "digest": image.digest,
        "uploaded": format_rfc3339(image.uploaded),
        "tags": sorted(image.tags),
    }


def placement_json(placement: Placement, repository: str | None = None) -> dict[str, Any]:
    """`slug` null: only `table` is known (see `slugSource` and `slugCandidates`)."""
    entry: dict[str, Any] = {
        "slug": placement.slug,
        "dataset": str(placement.dataset),
        "table": placement.table,
        "slugSource": placement.slug_source,
        "enrolledAt": _time(placement.enrolled_at),
    }
    if placement.candidates:
        entry["slugCandidates"] = list(placement.candidates)
    decision = placement.decision
    if decision is None:
        entry["error"] = placement.error
        return entry
    entry["reason"] = str(decision.reason)
    if decision.pin is not None:
        entry["override"] = decision.pin.origin
    if repository is None:
        entry["images"] = {repo: c.image.digest for repo, c in decision.choices.items()}
    entry["configShas"] = dict(decision.shas)
    return entry


def report_json(report: Report) -> dict[str, Any]:
    return {
        "takenAt": format_rfc3339(report.taken_at),
        "enrollmentsSource": report.enrollments_source,
        "experimentCount": report.experiment_count,
        "datasets": [
            {"dataset": str(d.dataset), "experimentCount": d.experiments, "error": d.error or None}
            for d in report.datasets
        ],
        "repositories": [
            {
                "repository": repo.repository,
                "breakingTag": repo.breaking_tag,
                "versions": [
                    image_json(v.image)
                    | {
                        "breaking": v.breaking,
                        "experimentCount": len(v.experiments),
                        "experiments": [placement_json(p, repo.repository) for p in v.experiments],
                        "configShas": {
                            name: {"first": r.first, "last": r.last, "count": r.count}
                            for name, r in v.shas.items()
                        },
                    }
                    for v in repo.versions
                ],
            }
            for repo in report.repositories
        ],
        "unresolved": [placement_json(p) for p in report.unresolved],
    }


def what_if_json(result: WhatIf) -> dict[str, Any]:
    return {
        "repository": result.repository,
        "image": image_json(result.image),
        "breakingTag": result.breaking_tag,
        "alreadyBreaking": result.already_breaking,
        "moves": [
            {
                "slug": move.placement.slug,
                "dataset": str(move.placement.dataset),
                "table": move.placement.table,
                "enrolledAt": _time(move.placement.enrolled_at),
                "from": image_json(move.before),
                "to": image_json(move.after),
            }
            for move in result.moves
        ],
    }


# --- terminal ---------------------------------------------------------------------------------


def short_digest(digest: str) -> str:
    return digest.removeprefix("sha256:")[:SHORT_DIGEST]


def short_time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ") if moment else "not enrolled"


def enrolled_text(placement: Placement) -> str:
    return "unreadable" if placement.time_unknown else short_time(placement.enrolled_at)


def printable(text: str) -> str:
    """Listed slugs are not trusted: no control characters reach the terminal."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def tags_text(image: Image) -> str:
    return ",".join(sorted(image.tags)) or "-"


def sha_range_text(sha_range: ShaRange | None) -> str:
    if sha_range is None:
        return "-"
    if sha_range.count == 1:
        return sha_range.first[:SHORT_SHA]
    return (
        f"{sha_range.first[:SHORT_SHA]}..{sha_range.last[:SHORT_SHA]} ({sha_range.count} commits)"
    )


def slug_text(placement: Placement) -> str:
    """The slug; `~` after one matched by a known slug; `[table]` when only the table is known."""
    if placement.slug is None:
        return f"[{printable(placement.table)}]"
    marker = MATCHED_MARK if placement.slug_source == SlugSource.KNOWN_SLUG else ""
    return printable(placement.slug) + marker


def slug_notes(placements: Iterable[Placement]) -> list[str]:
    """The footnotes the shown slugs need, `~` first."""
    sources = {p.slug_source for p in placements}
    notes = []
    if SlugSource.KNOWN_SLUG in sources:
        notes.append(f"{MATCHED_MARK} {MATCHED_NOTE}")
    if SlugSource.TABLE_ONLY in sources:
        notes.append(f"[enrollments_…] {TABLE_ONLY_NOTE}")
    return notes


def datasets_text(report: Report) -> list[str]:
    """One line per dataset when there are several or one failed; else none."""
    if not report.several_datasets and not any(d.error for d in report.datasets):
        return []
    rows = [
        [
            f"  {d.dataset}",
            f"not listed: {printable(d.error)}"
            if d.error
            else f"{d.experiments} experiment{'s' * (d.experiments != 1)}",
        ]
        for d in report.datasets
    ]
    return _columns(rows)


def _columns(rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        (indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))).rstrip()
        for row in rows
    ]


def render_report(report: Report) -> str:
    count = report.experiment_count + len(report.unresolved)
    apart = f" ({len(report.unresolved)} not pinnable)" if report.unresolved else ""
    where = f" in {report.datasets[0].dataset}" if len(report.datasets) == 1 else ""
    lines = [
        f"{count} experiment{'s' * (count != 1)} from {report.enrollments_source}{where}{apart}, "
        f"as of {short_time(report.taken_at)}",
        *datasets_text(report),
    ]
    shown: list[Placement] = list(report.unresolved)
    for repo in report.repositories:
        tag = f"breaking tag '{repo.breaking_tag}'" if repo.breaking_tag else "no breaking tag"
        lines += ["", f"{repo.repository} ({tag})"]
        header = ["IMAGE", "UPLOADED", "TAGS", "EXPERIMENTS"]
        header += [name.upper() for name in report.config_repos]
        rows = [header]
        for version in repo.versions:
            rows.append(
                [
                    short_digest(version.image.digest),
                    short_time(version.image.uploaded),
                    tags_text(version.image),
                    str(len(version.experiments)),
                    *(sha_range_text(version.shas.get(n)) for n in report.config_repos),
                ]
            )
        table = _columns(rows)
        placed = [p for version in repo.versions for p in version.experiments]
        sub_rows = iter(
            _columns([_experiment_row(p, report) for p in placed], "    ") if placed else []
        )
        lines.append(table[0])
        for version, row in zip(repo.versions, table[1:], strict=True):
            lines.append(row)
            lines += [next(sub_rows) for _ in version.experiments]
        shown += placed
    if report.unresolved:
        lines += ["", "Listed but not pinnable (the webhook would refuse or fail these pods):"]
        for placement in report.unresolved:
            where_row = [str(placement.dataset)] if report.several_datasets else []
            cells = [slug_text(placement), *where_row, enrolled_text(placement)]
            lines.append("    " + "  ".join(cells))
            lines.append(f"        {printable(placement.error)}")
    notes = slug_notes(shown)
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def _experiment_row(placement: Placement, report: Report) -> list[str]:
    decision = placement.decision
    reason = str(decision.reason) if decision else ""
    shas = [decision.shas.get(n, "")[:SHORT_SHA] if decision else "" for n in report.config_repos]
    where = [str(placement.dataset)] if report.several_datasets else []
    return [slug_text(placement), *where, enrolled_text(placement), reason, *shas]


def render_what_if(result: WhatIf) -> str:
    image = result.image
    name = f"{short_digest(image.digest)} (uploaded {short_time(image.uploaded)})"
    if result.already_breaking:
        return f"{name} already carries the '{result.breaking_tag}' tag: nothing would move."
    count = len(result.moves)
    head = (
        f"A '{result.breaking_tag}' tag on {name} would move "
        f"{count} experiment{'s' * (count != 1)} of {result.repository}"
    )
    if not result.moves:
        return head + "."
    several = len({move.placement.dataset for move in result.moves}) > 1
    rows = [["SLUG", *(["DATASET"] * several), "ENROLLED", "FROM", "TO"]]
    for move in result.moves:
        rows.append(
            [
                slug_text(move.placement),
                *([str(move.placement.dataset)] * several),
                short_time(move.placement.enrolled_at),
                f"{short_digest(move.before.digest)} ({tags_text(move.before)})",
                f"{short_digest(move.after.digest)} ({tags_text(move.after)})",
            ]
        )
    notes = slug_notes(move.placement for move in result.moves)
    return "\n".join([head + ":", "", *_columns(rows), *(["", *notes] if notes else [])])
