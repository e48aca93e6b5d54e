"""The status page's picture: releases on a time axis, experiments at their enrollment time.

Pure SVG, no script. Horizontal positions are percentages of the drawing's
width and vertical ones are pixels, so the same markup fills a 1280 px screen
or a phone without scaling the text down to nothing. `draw_timeline` does the
layout (scale, ticks, label rows, lanes) and returns a `Drawing`; the template
`templates/timeline.svg` only writes it out, escaping every piece of listed
text (slugs, tags) on the way.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from webhook.core.pinning import Image
from webhook.insight.inventory import Placement
from webhook.insight.report import RepositoryReport, enrolled_text, short_digest, short_time

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#b07aa1",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#9c755f",
    "#ff9da7",
    "#5f6b7a",
)
UNRESOLVED_COLOUR = "#9aa1ab"
GENERIC_TAGS = frozenset({"latest"})

# Horizontal layout, in percent of the drawing's width.
PLOT_LEFT, PLOT_RIGHT, PLOT_RIGHT_ALONE = 3.0, 85.0, 97.0
PENDING_X = 92.5
# Vertical layout, in pixels.
LABEL_ROW = 15
LANE = 18
ROW = 30
LABELLED_ROWS = 40
LABEL_CHARS = 60
RADIUS = 6
AXIS_SPACE = 34
# Packing: labels assume a desktop-wide plot (they are hidden on phones, where the
# legend names the versions); points assume a phone-wide one.
LABEL_PLOT_PX = 1000.0
LABEL_CHAR_PX = 6.6
POINT_GAP = 0.035
MAX_LABEL_ROWS = 4


def colours(versions: Sequence[Image]) -> dict[str, str]:
    """A stable colour per image: by upload order, so a release keeps its colour."""
    ordered = sorted(versions, key=lambda i: (i.uploaded, i.digest))
    return {image.digest: PALETTE[n % len(PALETTE)] for n, image in enumerate(ordered)}


def release_name(image: Image) -> str:
    named = sorted(image.tags - GENERIC_TAGS)
    versions = [t for t in named if t != "breaking"]
    return (versions or named or [short_digest(image.digest)])[0]


@dataclass(frozen=True)
class _Scale:
    start: datetime
    end: datetime
    left: float
    right: float

    def fraction(self, moment: datetime) -> float:
        span = (self.end - self.start).total_seconds()
        return (moment - self.start).total_seconds() / span

    def x(self, moment: datetime) -> float:
        return self.left + self.fraction(moment) * (self.right - self.left)


def _scale(moments: Sequence[datetime], right: float) -> _Scale:
    first, last = min(moments), max(moments)
    span = last - first
    pad = span * 0.03 if span > timedelta(days=20) else timedelta(days=30)
    return _Scale(first - pad, last + pad, PLOT_LEFT, right)


def _lanes(positions: Sequence[float], gap: float) -> list[int]:
    """Greedy packing: each item takes the first lane whose last item is `gap` away."""
    ends: list[float] = []
    lanes = []
    for position in positions:
        for lane, end in enumerate(ends):
            if position - end >= gap:
                ends[lane] = position
                lanes.append(lane)
                break
        else:
            ends.append(position)
            lanes.append(len(ends) - 1)
    return lanes


def _ticks(scale: _Scale) -> list[tuple[datetime, str]]:
    months = max(1, round((scale.end - scale.start).days / 30.4))
    step = next((s for s in (1, 2, 3, 6, 12, 24, 60) if months / s <= 8), 120)
    moment = datetime(scale.start.year, scale.start.month, 1, tzinfo=UTC)
    ticks = []
    while moment <= scale.end:
        index = moment.year * 12 + moment.month - 1
        if moment >= scale.start and index % step == 0:
            text = str(moment.year) if moment.month == 1 else calendar.month_abbr[moment.month]
            ticks.append((moment, text))
        year, month = divmod(index + 1, 12)
        moment = datetime(year, month + 1, 1, tzinfo=UTC)
    return ticks


# Offsets of the marks around the axis and the points, in pixels.
TICK_LENGTH = 5
TICK_LABEL_BELOW = 18
RELEASE_MARK = 7
POINT_LABEL_ABOVE = 10
POINT_LABEL_GAP = 6
LABEL_RIGHT_HALF = 55.0  # points right of this (percent) end their label at the point


@dataclass(frozen=True)
class Tick:
    x: float
    text: str


@dataclass(frozen=True)
class Release:
    """An image: a line from its label down to the axis, a mark on the axis, its label."""

    digest: str
    x: float
    colour: str
    title: str
    breaking: bool
    name: str
    label_y: int | None  # None: no room for the label (the legend names the release)


@dataclass(frozen=True)
class Point:
    """An experiment: a dot at its enrollment time and a line to the release it runs."""

    slug: str
    title: str
    x: float
    y: int
    classes: str
    fill: str
    stroke: str
    stroke_width: str
    colour: str
    release_x: float | None  # where its connector ends; None: no connector
    name: str | None  # its label; None when the points are packed without labels
    name_dx: int = 0
    name_anchor: str = "start"

    @property
    def name_y(self) -> int:
        return self.y - POINT_LABEL_ABOVE


@dataclass(frozen=True)
class Drawing:
    """Everything `templates/timeline.svg` writes, laid out."""

    description: str
    height: int
    top: int  # below the release labels: where the release lines start
    axis: int
    left: float
    right: float
    ticks: list[Tick]
    releases: list[Release]
    points: list[Point]  # enrolled, at their enrollment time
    pending: list[Point]  # not enrolled: in a column right of the plot

    @property
    def release_top(self) -> int:
        return self.top - 2

    @property
    def tick_bottom(self) -> int:
        return self.axis + TICK_LENGTH

    @property
    def tick_label_y(self) -> int:
        return self.axis + TICK_LABEL_BELOW

    @property
    def mark_top(self) -> int:
        return self.axis - RELEASE_MARK

    @property
    def mark_bottom(self) -> int:
        return self.axis + RELEASE_MARK

    @property
    def pending_label_x(self) -> float:
        return PLOT_RIGHT_ALONE + 2

    @property
    def pending_label_y(self) -> int:
        return self.top + 6

    @property
    def point_label_x(self) -> float:
        """Phones: a point's label at its row's left edge, where a long slug has the width."""
        return PLOT_LEFT


def draw_timeline(
    repo: RepositoryReport,
    palette: Mapping[str, str],
    unresolved: Sequence[Placement] = (),
    now: datetime | None = None,
) -> Drawing:
    versions = [v.image for v in repo.versions]
    placed = [(p, v.image) for v in repo.versions for p in v.experiments]
    dated = [(p, image) for p, image in placed if p.enrolled_at is not None]
    pending = [p for p, _ in placed if p.enrolled_at is None]
    strays = [p for p in unresolved if p.enrolled_at is not None]
    pending += [p for p in unresolved if p.enrolled_at is None]
    moments = [i.uploaded for i in versions]
    moments += [p.enrolled_at for p, _ in dated if p.enrolled_at is not None]
    moments += [p.enrolled_at for p in strays if p.enrolled_at is not None]
    if not moments:
        moments = [now or datetime.now(UTC)]
    scale = _scale(moments, PLOT_RIGHT if pending else PLOT_RIGHT_ALONE)

    # Release labels: packed into rows, oldest first.
    releases = sorted(versions, key=lambda i: (i.uploaded, i.digest))
    label_rows = _label_rows(releases, scale)
    rows_used = max((r for r in label_rows if r is not None), default=-1) + 1
    top = rows_used * LABEL_ROW + 10
    # Experiments: a labelled row each while they fit, else packed into unlabelled lanes.
    points: list[tuple[Placement, Image | None, datetime]] = [
        (p, image, p.enrolled_at) for p, image in dated if p.enrolled_at is not None
    ]
    points += [(p, None, p.enrolled_at) for p in strays if p.enrolled_at is not None]
    points.sort(key=lambda item: (item[2], item[0].label, str(item[0].dataset)))
    labelled = len(points) + len(pending) <= LABELLED_ROWS
    if labelled:
        lanes = list(range(len(points)))
        pending_lanes = [len(points) + n for n in range(len(pending))]
        lane_height = ROW
    else:
        lanes = _lanes([scale.fraction(moment) for _, _, moment in points], POINT_GAP)
        pending_lanes = list(range(len(pending)))
        lane_height = LANE
    lane_count = max([*lanes, *pending_lanes, 0]) + 1
    first_lane = top + 16

    def lane_y(lane: int) -> int:
        return first_lane + lane * lane_height + lane_height // 2 + (5 if labelled else 0)

    axis = first_lane + lane_count * lane_height + 10
    return Drawing(
        description=f"Releases and experiments of {repo.repository}",
        height=axis + AXIS_SPACE,
        top=top,
        axis=axis,
        left=scale.left,
        right=scale.right,
        ticks=[Tick(scale.x(moment), text) for moment, text in _ticks(scale)],
        releases=[
            _release(release, row, scale, palette, repo.breaking_tag)
            for release, row in zip(releases, label_rows, strict=True)
        ],
        points=[
            _point(placement, runs, scale.x(moment), lane_y(lane), scale, palette, labelled)
            for (placement, runs, moment), lane in zip(points, lanes, strict=True)
        ],
        pending=[
            _point(
                waiting, _image_of(waiting, repo), PENDING_X, lane_y(lane), None, palette, labelled
            )
            for waiting, lane in zip(pending, pending_lanes, strict=True)
        ],
    )


def _label_rows(releases: Sequence[Image], scale: _Scale) -> list[int | None]:
    """Each label's row, or None when it does not fit (the legend still names it)."""
    ends = [-1.0] * MAX_LABEL_ROWS
    rows: list[int | None] = []
    for image in releases:
        width = (len(release_name(image)) * LABEL_CHAR_PX + 8) / LABEL_PLOT_PX
        centre = scale.fraction(image.uploaded)
        start = centre - width / 2
        row = next((r for r, end in enumerate(ends) if start >= end), None)
        if row is not None:
            ends[row] = centre + width / 2
        rows.append(row)
    return rows


def _release(
    image: Image,
    row: int | None,
    scale: _Scale,
    palette: Mapping[str, str],
    breaking_tag: str | None,
) -> Release:
    breaking = bool(breaking_tag) and breaking_tag in image.tags
    tags = ", ".join(sorted(image.tags)) or "no tags"
    return Release(
        digest=image.digest,
        x=scale.x(image.uploaded),
        colour=palette.get(image.digest, UNRESOLVED_COLOUR),
        title=f"{short_digest(image.digest)} uploaded {short_time(image.uploaded)} ({tags})",
        breaking=breaking,
        name=release_name(image) + (" ⚑" if breaking else ""),
        label_y=None if row is None else (row + 1) * LABEL_ROW - 3,
    )


def _point(
    placement: Placement,
    image: Image | None,
    x: float,
    y: int,
    scale: _Scale | None,
    palette: Mapping[str, str],
    labelled: bool,
) -> Point:
    colour = palette.get(image.digest, UNRESOLVED_COLOUR) if image else UNRESOLVED_COLOUR
    runs = f"runs {release_name(image)} ({short_digest(image.digest)})" if image else ""
    why = str(placement.decision.reason) if placement.decision else placement.error
    where = (
        f"{placement.dataset}" if placement.slug is not None else f"table in {placement.dataset}"
    )
    title = f"{placement.label}\n{where}\nenrolled {enrolled_text(placement)}\n{runs}\n{why}"
    classes, fill, stroke, stroke_width = "experiment", colour, "#fff", "1.5"
    if image is None:
        classes, fill, stroke, stroke_width = "experiment unresolved", "#fff", colour, "2"
    elif placement.enrolled_at is None:
        classes, fill, stroke, stroke_width = "experiment pending", "#fff", colour, "2.5"
    name = None
    if labelled:
        name = placement.label
        if len(name) > LABEL_CHARS:
            name = name[: LABEL_CHARS - 1] + "…"
    right = x > LABEL_RIGHT_HALF
    return Point(
        slug=placement.label,
        title=title.strip(),
        x=x,
        y=y,
        classes=classes,
        fill=fill,
        stroke=stroke,
        stroke_width=stroke_width,
        colour=colour,
        release_x=scale.x(image.uploaded) if scale is not None and image is not None else None,
        name=name,
        name_dx=POINT_LABEL_GAP if right else -POINT_LABEL_GAP,
        name_anchor="end" if right else "start",
    )


def _image_of(placement: Placement, repo: RepositoryReport) -> Image | None:
    digest = placement.digest_for(repo.repository)
    return next((v.image for v in repo.versions if v.image.digest == digest), None)
