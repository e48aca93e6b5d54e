"""The status page as one self-contained HTML document: no script, no external asset.

`templates/status.html` writes it, with the timeline (`templates/timeline.svg`)
and the stylesheet (`templates/status.css`) inline. Every piece of listed or
admitted text (slugs, tags, pod names, messages) is untrusted: the templates
are autoescaped (`webhook.insight.rendering`), and the page also ships a
Content-Security-Policy (see `webhook.insight.admin`) that forbids scripts
altogether and allows only this stylesheet, by its hash.

This module prepares what the template shows (the colours and the drawing of
each repository, the short forms of digests, times and references); the
template only writes it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from markupsafe import Markup

from webhook.core.pinning import Image
from webhook.core.slugs import SlugSource
from webhook.insight.inventory import DatasetListing, Placement
from webhook.insight.rendering import TEMPLATES
from webhook.insight.report import (
    MATCHED_MARK,
    MATCHED_NOTE,
    TABLE_ONLY_NOTE,
    Report,
    RepositoryReport,
    Version,
    enrolled_text,
    short_digest,
    short_time,
    slug_notes,
)
from webhook.insight.status import Status
from webhook.insight.timeline import (
    UNRESOLVED_COLOUR,
    Drawing,
    colours,
    draw_timeline,
    release_name,
)

SHORT_SHA = 10
STYLE = resources.files(__package__).joinpath("templates", "status.css").read_text("utf-8")


@dataclass(frozen=True)
class RepositoryView:
    """One repository's timeline, legend and table, in the colours they share."""

    repo: RepositoryReport
    palette: Mapping[str, str]
    drawing: Drawing
    notes: list[str]  # footnotes for the slugs its table shows

    @property
    def legend(self) -> list[Version]:
        return sorted(self.repo.versions, key=lambda v: v.image.uploaded)

    def colour(self, image: Image) -> str:
        return self.palette.get(image.digest, UNRESOLVED_COLOUR)


def render_status(status: Status) -> str:
    report = status.report
    views = [] if report is None else [_view(report, repo) for repo in report.repositories]
    return TEMPLATES.get_template("status.html").render(
        **_HELPERS,
        status=status,
        report=report,
        repositories=views,
        settings={k: v for k, v in status.settings.items() if k != "workers"},
        workers=status.settings.get("workers", "every worker"),
        style=Markup(STYLE),  # noqa: S704 (the package's own stylesheet, never input)
    )


def _view(report: Report, repo: RepositoryReport) -> RepositoryView:
    palette = colours([v.image for v in repo.versions])
    return RepositoryView(
        repo=repo,
        palette=palette,
        drawing=draw_timeline(repo, palette, report.unresolved, report.taken_at),
        notes=slug_notes([p for v in repo.versions for p in v.experiments]),
    )


def tag_class(tag: str, breaking_tag: str | None) -> str:
    """The class of a tag's badge: the breaking tag and `latest` stand out."""
    if tag == breaking_tag:
        return "tag breaking"
    return "tag latest" if tag == "latest" else "tag"


def slug_meta(placement: Placement, several_datasets: bool) -> str:
    """What follows a slug in the versions table: why it runs this, since when, where."""
    meta = [str(placement.decision.reason)] if placement.decision else []
    if placement.enrolled_at is not None:
        meta.append(f"enrolled {short_time(placement.enrolled_at)}")
    if several_datasets:
        meta.append(str(placement.dataset))
    return " · ".join(meta)


def short_reference(reference: str) -> str:
    """`registry/path/name@sha256:<64 hex>` as `name@<12 hex>`; a tag reference as it is."""
    name, _, digest = reference.partition("@")
    return f"{name.rsplit('/', 1)[-1]}@{short_digest(digest)}" if digest else reference


def decision_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def plural(noun: str, count: int) -> str:
    return noun if count == 1 else f"{noun}s"


def unlisted(report: Report) -> list[DatasetListing]:
    """The datasets that could not be listed: their experiments are missing from the page."""
    return [d for d in report.datasets if d.error]


def datasets(report: Report) -> str:
    return ", ".join(str(d.dataset) for d in report.datasets)


_HELPERS: Mapping[str, object] = {
    "KNOWN_SLUG": SlugSource.KNOWN_SLUG,
    "MATCHED_MARK": MATCHED_MARK,
    "MATCHED_NOTE": MATCHED_NOTE,
    "TABLE_ONLY_NOTE": TABLE_ONLY_NOTE,
    "SHORT_SHA": SHORT_SHA,
    "datasets": datasets,
    "decision_time": decision_time,
    "enrolled_text": enrolled_text,
    "plural": plural,
    "release_name": release_name,
    "short_digest": short_digest,
    "short_reference": short_reference,
    "short_time": short_time,
    "slug_meta": slug_meta,
    "slug_notes": slug_notes,
    "tag_class": tag_class,
    "unlisted": unlisted,
}
