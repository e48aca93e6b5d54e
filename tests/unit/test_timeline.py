"""The timeline picture on the example data: axis, release labels, colours, rows."""

from __future__ import annotations

import itertools

import pytest

from harness.builders import EXAMPLES, image
from tests.support.dom import Document, parse
from webhook.config import load_config
from webhook.insight.rendering import TEMPLATES
from webhook.insight.report import build_report
from webhook.insight.timeline import PALETTE, colours, draw_timeline, release_name
from webhook.wiring import Wiring


@pytest.fixture(scope="module")
def drawing() -> Document:
    report = build_report(Wiring(load_config(EXAMPLES / "config.yaml")).inventory())
    (repo,) = report.repositories
    drawing = draw_timeline(repo, colours([v.image for v in repo.versions]), report.unresolved)
    return parse(TEMPLATES.get_template("timeline.svg").render(drawing=drawing))


def _x(value: str) -> float:
    return float(value.rstrip("%"))


def test_axis_ticks_cover_the_span(drawing: Document) -> None:
    labels = [t.text for t in drawing.find("text", "tick-label")]
    assert labels == ["2023", "Apr", "Jul", "Oct", "2024", "Apr"]


def test_release_labels_never_overlap_on_a_wide_screen(drawing: Document) -> None:
    releases = drawing.find("g", "release")
    labels = drawing.find("text", "release-label")
    assert len(labels) == len(releases) == 6
    assert [label.text for label in labels][:3] == ["v2023.1.0", "v2023.3.0", "v2023.11.0"]
    rows: dict[str, list[float]] = {}
    for label in labels:
        rows.setdefault(label.attrs["y"], []).append(_x(label.attrs["x"]))
    assert len(rows) == 2, "v2024.5.0 and v2024.6.0 are close: a second row"
    for positions in rows.values():
        positions.sort()
        assert all(b - a > 5 for a, b in itertools.pairwise(positions))


def test_breaking_release_is_marked(drawing: Document) -> None:
    (breaking,) = drawing.find("g", "breaking")
    assert breaking.attrs["data-digest"].startswith("sha256:c71233c8")


def test_one_row_per_experiment_in_enrollment_order(drawing: Document) -> None:
    points = drawing.find("circle", "experiment")
    order = [p.attrs["data-slug"] for p in sorted(points, key=lambda p: int(p.attrs["cy"]))]
    assert order == [
        "my-experiment",
        "long-running-study",
        "android-onboarding-notification-permission-v2",
        "firefox-desktop-private-browsing-redesign-rollout",
        "brand-new-experiment",
    ]
    (pending,) = drawing.find("circle", "pending")
    assert pending.attrs["data-slug"] == "brand-new-experiment"
    assert _x(pending.attrs["cx"]) > max(
        _x(m.attrs["x1"]) for m in drawing.find("line", "release-mark")
    )


def test_a_release_keeps_its_colour_when_newer_ones_come() -> None:
    first = [image("a", "2023-01-01T00:00:00Z"), image("b", "2023-02-01T00:00:00Z")]
    later = [*first, image("c", "2023-03-01T00:00:00Z")]
    assert colours(first).items() <= colours(later).items()
    assert colours(later)[later[2].digest] == PALETTE[2]


@pytest.mark.parametrize(
    ("tags", "name"),
    [
        (("v2024.2.0", "breaking"), "v2024.2.0"),
        (("latest", "v2024.6.0"), "v2024.6.0"),
        (("breaking",), "breaking"),
        ((), "ca978112ca1b"),
    ],
)
def test_release_names(tags: tuple[str, ...], name: str) -> None:
    assert release_name(image("a", "2023-01-01T00:00:00Z", *tags)) == name
