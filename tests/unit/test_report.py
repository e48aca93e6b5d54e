"""The report: experiments grouped by the image the webhook pins them to, and the what-if."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import pytest

from harness.builders import JETSTREAM, image, utc
from tests.support.fakes import (
    HISTORY,
    HISTORY_WITH_BREAKING,
    IMG_2023_01,
    IMG_2023_03,
    IMG_2024_02,
    IMG_2024_06,
    NOW,
    SHA_2023_01,
    SHA_2023_06,
    SHA_2024_06,
    FakeLister,
    World,
    listed,
)
from webhook.core.datasets import Dataset, DatasetPolicy
from webhook.core.pinning import Image
from webhook.core.slugs import table_suffix
from webhook.insight.inventory import (
    Inventory,
    InventoryFailed,
    Placement,
    UnknownImage,
    take_inventory,
    what_if_breaking,
)
from webhook.insight.report import (
    ShaRange,
    build_report,
    placement_json,
    render_report,
    render_what_if,
    report_json,
    what_if,
    what_if_json,
)
from webhook.sources import EnrolledExperiment, SourceError
from webhook.sources.descriptions import Descriptions

MOZANALYSIS = Dataset("moz-fx-data-experiments", "mozanalysis")


def row(slug: str, when: str | datetime, source: str = "static") -> EnrolledExperiment:
    return listed(slug, utc(when) if isinstance(when, str) else when, source)


def table_row(table: str, when: str, error: str = "") -> EnrolledExperiment:
    """A BigQuery listing's row: the table's name, no slug."""
    return EnrolledExperiment(table, None, None if error else utc(when), "table-name", error)


EXPERIMENTS = (
    row("before-any-image", "2022-06-01T00:00:00Z"),
    row("my-experiment", "2023-02-01T00:00:00Z"),
    row("spring-study", "2023-04-01T00:00:00Z"),
    table_row("enrollments_late_experiment", "2024-03-01T00:00:00Z"),
    row("pinned-latest", "2023-02-15T00:00:00Z"),
)
LATE = "enrollments_late_experiment"
PENDING = ("not-yet-enrolled",)


def inventory_of(
    history: Sequence[Image] = HISTORY,
    rows: Sequence[EnrolledExperiment] = EXPERIMENTS,
    pending: Sequence[str] = PENDING,
) -> tuple[World, Inventory]:
    world = World()
    world.images.history = history
    world.overrides.slugs = {"pinned-latest": "latest"}
    lister = FakeLister(rows=rows, pending=pending)
    return world, take_inventory(world.resolver(), lister)


def grouping(inventory: Inventory) -> dict[str, list[str]]:
    (repo,) = build_report(inventory).repositories
    return {v.image.digest: [p.label for p in v.experiments] for v in repo.versions}


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        (
            HISTORY,
            {
                IMG_2024_06.digest: ["pinned-latest", "not-yet-enrolled"],
                IMG_2024_02.digest: [LATE],
                IMG_2023_03.digest: ["spring-study"],
                IMG_2023_01.digest: ["before-any-image", "my-experiment"],
            },
        ),
        (
            HISTORY_WITH_BREAKING,
            {
                IMG_2024_06.digest: ["pinned-latest", "not-yet-enrolled"],
                IMG_2024_02.digest: [
                    "before-any-image",
                    "my-experiment",
                    "spring-study",
                    LATE,
                ],
                IMG_2023_03.digest: [],
                IMG_2023_01.digest: [],
            },
        ),
    ],
    ids=["no breaking release", "breaking release in 2024-02"],
)
def test_grouping_by_image(history: Sequence[Image], expected: dict[str, list[str]]) -> None:
    _, inventory = inventory_of(history)
    assert grouping(inventory) == expected
    assert list(grouping(inventory)) == [i.digest for i in reversed(history)], "newest first"


def test_each_experiment_has_the_webhooks_decision() -> None:
    world, inventory = inventory_of()
    world.enrollments.enrolled = {  # per-slug lookups find what the listing found
        e.slug or table_suffix(e.table): e.enrolled_at for e in EXPERIMENTS
    }
    resolver = world.resolver()
    for placement in inventory.placements:
        slug = placement.slug or table_suffix(placement.table)
        decision = resolver.decide(resolver.facts_for_slug(slug))
        assert placement.decision is not None
        assert placement.decision.choices == decision.choices
        assert placement.decision.shas == decision.shas
        assert placement.decision.reason == decision.reason


def test_reasons_and_enrollment_times() -> None:
    _, inventory = inventory_of()
    by_slug = {p.label: p for p in inventory.placements}
    assert by_slug["not-yet-enrolled"].enrolled_at is None
    assert by_slug["not-yet-enrolled"].slug_source == "not-enrolled"
    reasons = {slug: str(p.decision.reason) for slug, p in by_slug.items() if p.decision}
    assert reasons == {
        "before-any-image": "enrollment",
        "my-experiment": "enrollment",
        "spring-study": "enrollment",
        LATE: "enrollment",
        "pinned-latest": "latest",
        "not-yet-enrolled": "not-enrolled",
    }
    assert inventory.taken_at == NOW


def test_listing_is_read_once_and_no_slug_is_looked_up_alone() -> None:
    world = World()
    lister = FakeLister(rows=EXPERIMENTS, pending=PENDING)
    take_inventory(world.resolver(), lister)
    assert lister.calls == 1
    assert world.enrollments.calls == 0, "the listing's times stand in for per-slug lookups"
    assert world.images.calls == 1, "the image history is read once"


def test_sha_ranges_are_ordered_by_the_time_they_apply() -> None:
    _, inventory = inventory_of(HISTORY_WITH_BREAKING)
    (repo,) = build_report(inventory).repositories
    versions = {v.image.digest: v for v in repo.versions}
    # before-any-image and my-experiment take the oldest commit, spring-study (2023-04)
    # too, late_experiment (2024-03) the 2023-06 one.
    assert versions[IMG_2024_02.digest].shas == {
        "metric-hub": ShaRange(SHA_2023_01.sha, SHA_2023_06.sha, 2)
    }
    assert versions[IMG_2024_06.digest].shas == {
        "metric-hub": ShaRange(SHA_2024_06.sha, SHA_2024_06.sha, 1)
    }
    assert versions[IMG_2023_01.digest].shas == {}


def test_experiments_that_cannot_be_pinned_are_listed_apart() -> None:
    rows = (*EXPERIMENTS, row("<script>alert(1)</script>", NOW, "description"))
    _, inventory = inventory_of(rows=rows)
    report = build_report(inventory)
    (unresolved,) = report.unresolved
    assert unresolved.slug == "<script>alert(1)</script>"
    assert "is not valid" in unresolved.error
    assert report.experiment_count == 6
    assert report_json(report)["unresolved"][0]["error"] == unresolved.error


def test_a_failing_source_fails_one_experiment_not_the_report() -> None:
    world = World()
    world.commits.error = SourceError("fake metric-hub", "timed out")
    inventory = take_inventory(world.resolver(), FakeLister(rows=EXPERIMENTS[:2]))
    assert [p.error for p in inventory.placements] == [
        "cannot pin experiment 'before-any-image': fake metric-hub failed: timed out",
        "cannot pin experiment 'my-experiment': fake metric-hub failed: timed out",
    ]


@pytest.mark.parametrize("broken", ["lister", "images"])
def test_no_listing_or_no_image_history_is_no_report(broken: str) -> None:
    world = World()
    lister = FakeLister(rows=EXPERIMENTS)
    error = SourceError("somewhere", "refused")
    if broken == "lister":
        lister.error = error
    else:
        world.images.error = error
    with pytest.raises(InventoryFailed, match="somewhere: refused"):
        take_inventory(world.resolver(), lister)


def test_an_override_to_an_index_child_still_shows_its_image() -> None:
    child = image("child", "2024-06-10T00:00:00Z", child=True)
    world = World()
    world.images.history = (*HISTORY, child)
    world.overrides.slugs = {"my-experiment": child.digest.removeprefix("sha256:")[:16]}
    inventory = take_inventory(world.resolver(), FakeLister(rows=EXPERIMENTS[1:2]))
    assert grouping(inventory)[child.digest] == ["my-experiment"]
    assert child.digest not in grouping(take_inventory(world.resolver(), FakeLister()))


@pytest.mark.parametrize(
    ("history", "target", "moves"),
    [
        (
            HISTORY,
            IMG_2023_03,
            [
                ("before-any-image", IMG_2023_01, IMG_2023_03),
                ("my-experiment", IMG_2023_01, IMG_2023_03),
            ],
        ),
        (
            HISTORY,
            IMG_2024_06,
            [
                ("before-any-image", IMG_2023_01, IMG_2024_06),
                ("my-experiment", IMG_2023_01, IMG_2024_06),
                ("spring-study", IMG_2023_03, IMG_2024_06),
                (LATE, IMG_2024_02, IMG_2024_06),
            ],
        ),
        (HISTORY, IMG_2023_01, []),
        (
            HISTORY_WITH_BREAKING,
            IMG_2023_03,
            [],  # everything older already moved up to the 2024-02 breaking release
        ),
    ],
    ids=["mid-2023", "newest", "oldest moves nobody", "older than a breaking release"],
)
def test_what_if_breaking(
    history: Sequence[Image], target: Image, moves: list[tuple[str, Image, Image]]
) -> None:
    world, inventory = inventory_of(history)
    result = what_if(inventory, what_if_breaking(world.resolver(), inventory, target.digest))
    assert [(m.placement.label, m.before.digest, m.after.digest) for m in result.moves] == [
        (slug, before.digest, after.digest) for slug, before, after in moves
    ]
    assert not result.already_breaking
    assert "breaking" in result.image.tags
    assert "breaking" not in target.tags, "the hypothesis never changes the real history"


def test_what_if_on_an_image_already_breaking() -> None:
    world, inventory = inventory_of(HISTORY_WITH_BREAKING)
    prefix = IMG_2024_02.digest[7:19]
    result = what_if(inventory, what_if_breaking(world.resolver(), inventory, prefix))
    assert result.already_breaking
    assert result.moves == ()
    assert "already carries the 'breaking' tag" in render_what_if(result)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("latest", "needs an image digest"),
        ("nope", "accepted"),
        ("0" * 12, "is not an image of any configured repository"),
    ],
)
def test_what_if_errors(text: str, message: str) -> None:
    world, inventory = inventory_of()
    with pytest.raises(UnknownImage, match=message):
        what_if_breaking(world.resolver(), inventory, text)


def test_what_if_ambiguous_prefix_and_index_child() -> None:
    twin = replace(IMG_2023_03, digest=IMG_2023_01.digest[:20] + "f" * 51)
    child = image("child", "2024-06-10T00:00:00Z", child=True)
    world, inventory = inventory_of((*HISTORY, twin, child))
    with pytest.raises(UnknownImage, match="matches 2 images"):
        what_if_breaking(world.resolver(), inventory, IMG_2023_01.digest[:20])
    with pytest.raises(UnknownImage, match="multi-arch index"):
        what_if_breaking(world.resolver(), inventory, child.digest)


def test_what_if_without_a_breaking_rule() -> None:
    world = World()
    resolver = world.resolver()
    resolver.images[JETSTREAM] = replace(resolver.images[JETSTREAM], breaking_tag=None)
    inventory = take_inventory(resolver, FakeLister(rows=EXPERIMENTS))
    with pytest.raises(UnknownImage, match="no breaking tag configured"):
        what_if_breaking(resolver, inventory, IMG_2023_03.digest)


def test_json_shapes() -> None:
    world, inventory = inventory_of()
    document = report_json(build_report(inventory))
    assert document["takenAt"] == "2026-11-28T00:00:00Z"
    assert document["experimentCount"] == 6
    (repo,) = document["repositories"]
    newest = repo["versions"][0]
    assert newest["digest"] == IMG_2024_06.digest
    assert newest["tags"] == ["latest", "v4"]
    assert newest["experimentCount"] == 2
    assert newest["experiments"][1] == {
        "slug": "not-yet-enrolled",
        "dataset": "moz-fx-data-experiments.mozanalysis",
        "table": "enrollments_not_yet_enrolled",
        "slugSource": "not-enrolled",
        "enrolledAt": None,
        "reason": "not-enrolled",
        "configShas": {"metric-hub": SHA_2024_06.sha},
    }
    assert newest["experiments"][0]["override"] == "overrides entry for pinned-latest"
    result = what_if(inventory, what_if_breaking(world.resolver(), inventory, IMG_2023_03.digest))
    moved = what_if_json(result)["moves"][0]
    assert moved["slug"] == "before-any-image"
    assert moved["dataset"] == "moz-fx-data-experiments.mozanalysis"
    assert moved["from"]["digest"] == IMG_2023_01.digest
    assert moved["to"]["tags"] == ["breaking", "v2"]


def test_text_table() -> None:
    rows = (*EXPERIMENTS, row("bad\x1b[31mslug", NOW, "description"))
    _, inventory = inventory_of(rows=rows)
    text = render_report(build_report(inventory))
    lines = text.splitlines()
    assert lines[0] == (
        "7 experiments from fake listing in moz-fx-data-experiments.mozanalysis "
        "(1 not pinnable), as of 2026-11-28 00:00Z"
    )
    header = next(line for line in lines if line.startswith("IMAGE"))
    assert header.split() == ["IMAGE", "UPLOADED", "TAGS", "EXPERIMENTS", "METRIC-HUB"]
    version = next(line for line in lines if line.startswith(IMG_2023_01.digest[7:19]))
    assert version.split() == [
        IMG_2023_01.digest[7:19],
        "2023-01-01",
        "13:00Z",
        "v1",
        "2",
        SHA_2023_01.sha[:10],
    ]
    assert any(line.split()[:2] == [f"[{LATE}]", "2024-03-01"] for line in lines)
    assert "[enrollments_…] only the enrollments table is known" in text
    assert "\x1b" not in text
    assert "bad\\x1b[31mslug" in text


def ambiguous(
    overrides: dict[str, str],
    description: str | None = None,
    known: Sequence[str] = (),
    overrides_error: SourceError | None = None,
) -> tuple[Placement, list[tuple[Dataset, str]]]:
    """The report's view of one table whose name has '_' (enrollments_late_experiment)."""
    world = World()
    world.overrides.slugs = overrides
    asked: list[tuple[Dataset, str]] = []

    def describe(dataset: Dataset, table: str) -> str | None:
        asked.append((dataset, table))
        return description

    rows = [table_row(LATE, "2024-03-01T00:00:00Z"), table_row("enrollments_solo", "2024-03-01")]
    world.overrides.error = overrides_error
    inventory = take_inventory(
        world.resolver(), FakeLister(rows=rows), Descriptions(describe), known
    )
    by_table = {p.table: p for p in inventory.placements}
    assert by_table["enrollments_solo"].slug == "solo", "a name without '_' is the slug"
    return by_table[LATE], asked


def test_the_description_names_the_real_slug_and_its_override_applies() -> None:
    late, asked = ambiguous({"late-experiment": "latest"}, description="late-experiment")
    assert (late.slug, late.slug_source) == ("late-experiment", "description")
    assert late.decision is not None
    assert str(late.decision.reason) == "latest"
    assert asked == [(MOZANALYSIS, LATE)], "only the table whose name cannot give the slug"


def test_an_entry_for_another_slug_of_the_table_never_applies() -> None:
    """`late.experiment: latest` is not the override of `late-experiment`, as for its pods."""
    late, _ = ambiguous({"late.experiment": "latest"}, description="late-experiment")
    assert late.slug == "late-experiment"
    assert late.decision is not None
    assert str(late.decision.reason) == "enrollment"


def test_without_a_description_the_one_known_slug_of_the_table_names_it() -> None:
    late, _ = ambiguous({"late-experiment": "latest"})
    assert (late.slug, late.slug_source) == ("late-experiment", "known-slug")
    assert late.decision is not None
    assert str(late.decision.reason) == "latest"
    admitted, _ = ambiguous({}, known=["late-experiment", "unrelated"])
    assert (admitted.slug, admitted.slug_source) == ("late-experiment", "known-slug")


def test_a_table_known_only_by_name_is_decided_when_no_entry_names_a_slug_of_it() -> None:
    late, _ = ambiguous({"my-experiment": "latest"})
    assert (late.slug, late.slug_source, late.label) == (None, "table-only", LATE)
    assert late.decision is not None
    assert str(late.decision.reason) == "enrollment"
    entry = placement_json(late)
    assert (entry["slug"], entry["table"], entry["slugSource"]) == (None, LATE, "table-only")


def test_two_entries_naming_slugs_of_one_table_leave_it_undecided() -> None:
    late, _ = ambiguous({"late-experiment": "latest", "late.experiment": "latest"})
    assert late.slug is None
    assert late.decision is None
    assert late.candidates == ("late-experiment", "late.experiment")
    assert late.error == (
        f"only the table {LATE} is known, which may be late-experiment or late.experiment; "
        "the overrides entries for late-experiment, late.experiment may apply or not: its "
        "description, which names the real slug, could not be read"
    )
    mixed, _ = ambiguous({"late-experiment": "latest"}, known=["late.experiment"])
    assert mixed.decision is None, "an admitted pod's slug shares the table with an entry"
    assert "the overrides entries for late-experiment may apply or not" in mixed.error
    assert placement_json(late)["slugCandidates"] == ["late-experiment", "late.experiment"]


def test_unreadable_overrides_leave_tables_known_only_by_name_undecided() -> None:
    late, _ = ambiguous({}, overrides_error=SourceError("fake overrides", "refused"))
    assert late.decision is None
    assert late.error == (
        f"only the table {LATE} is known, and the overrides entries could not be read to tell "
        "whether one applies to it (fake overrides: refused)"
    )


def test_a_malformed_table_is_listed_apart_with_its_error() -> None:
    bad = table_row("enrollments_bad_label", "", error="table enrollments_bad_label has label x")
    _, inventory = inventory_of(rows=(*EXPERIMENTS, bad))
    report = build_report(inventory)
    (unresolved,) = report.unresolved
    assert (unresolved.table, unresolved.error) == (bad.table, bad.error)
    assert report.experiment_count == 6, "every other experiment is decided"
    text = render_report(report)
    assert "    [enrollments_bad_label]  unreadable" in text.splitlines()
    assert "        table enrollments_bad_label has label x" in text.splitlines()


STAGING = Dataset("moz-fx-data-experiments", "mozanalysis_staging")
TYPO = Dataset("moz-fx-data-experiments", "mozanalysis_typo")


def test_every_allowed_dataset_is_listed_and_shown() -> None:
    world = World(datasets=DatasetPolicy.of(MOZANALYSIS, [STAGING, MOZANALYSIS, TYPO]))
    lister = FakeLister(
        rows=EXPERIMENTS[:2],
        by_dataset={
            STAGING: [row("my-experiment", "2024-03-01T00:00:00Z")],
            TYPO: SourceError("fake listing", "dataset typo not found"),
        },
    )
    inventory = take_inventory(world.resolver(), lister)
    assert [(d.dataset, d.experiments, d.error) for d in inventory.datasets] == [
        (MOZANALYSIS, 2, ""),  # the default first
        (STAGING, 1, ""),
        (TYPO, 0, "fake listing: dataset typo not found"),
    ]
    report = build_report(inventory)
    assert report.experiment_count == 3, "one slug in two datasets is two experiments"
    by_key = {p.key: p for p in inventory.placements}
    for dataset, digest in ((MOZANALYSIS, IMG_2023_01.digest), (STAGING, IMG_2024_02.digest)):
        decision = by_key[(dataset, "my-experiment")].decision
        assert decision is not None
        assert (decision.dataset, decision.digest_for(JETSTREAM)) == (dataset, digest)
    document = report_json(report)
    assert document["datasets"][2] == {
        "dataset": str(TYPO),
        "experimentCount": 0,
        "error": "fake listing: dataset typo not found",
    }
    lines = render_report(report).splitlines()
    assert lines[0] == "3 experiments from fake listing, as of 2026-11-28 00:00Z"
    assert lines[3].split() == [str(TYPO), "not", "listed:", "fake", "listing:", "dataset",
                                "typo", "not", "found"]  # fmt: skip
    assert any(line.split()[:2] == ["my-experiment", str(STAGING)] for line in lines)


def test_no_dataset_listed_is_no_report() -> None:
    world = World(datasets=DatasetPolicy.of(MOZANALYSIS, [MOZANALYSIS, STAGING]))
    lister = FakeLister(error=SourceError("fake listing", "down"))
    with pytest.raises(InventoryFailed, match="cannot list experiments: fake listing: down; "):
        take_inventory(world.resolver(), lister)
