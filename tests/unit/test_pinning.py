"""The pure resolution rules (docs/design.md, rules 1, 3, 5, 6), table by table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.builders import commit, digest, image, utc
from webhook.core.pinning import (
    Commit,
    EmptyHistory,
    Image,
    ImageRule,
    InvalidPin,
    InvalidSlug,
    PinDigest,
    PinLatest,
    Reason,
    UnknownDigest,
    commit_at,
    enrollments_table,
    image_at,
    image_by_digest,
    newest_image,
    parse_pin,
    pod_pin,
    pod_reason,
    validate_slug,
)

# jetstream's own reference history (tests/conftest.py docker_images there):
A = image("jetstream-A", "2023-01-01T13:00:00Z")
X = image("jetstream-X", "2023-03-01T13:00:00Z")
NOW = datetime.now(UTC)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        pytest.param(NOW, X, id="now -> newest"),
        pytest.param(utc("2023-02-01T00:00:00Z"), A, id="2023-02-01 -> A"),
        pytest.param(utc("2019-02-01T00:00:00Z"), A, id="2019 -> oldest"),
        pytest.param(utc("2023-03-01T13:00:00Z"), X, id="exactly at upload -> that image"),
        pytest.param(utc("2023-03-01T12:59:59Z"), A, id="a second before upload -> previous"),
    ],
)
def test_jetstream_reference_image_for_date(when: datetime, expected: Image) -> None:
    assert image_at([A, X], when, "breaking").image == expected


@pytest.mark.parametrize(
    ("x_tags", "expected", "rule"),
    [
        pytest.param({"breaking"}, X, ImageRule.BREAKING, id="X tagged breaking -> X"),
        pytest.param({"non-breaking"}, A, ImageRule.OLDEST, id="X tagged non-breaking -> A"),
    ],
)
def test_jetstream_reference_breaking(x_tags: set[str], expected: Image, rule: ImageRule) -> None:
    x = Image(X.digest, X.uploaded, frozenset(x_tags))
    choice = image_at([A, x], utc("2023-01-01T00:00:00Z"), "breaking")
    assert (choice.image.digest, choice.rule) == (expected.digest, rule)


def test_unrelated_repository_images_are_not_in_the_history() -> None:
    # The resolver hands image_at one repository's history; an image of another
    # repository uploaded later must not win: it is simply not a candidate.
    unrelated = image("unrelated", "2023-03-01T13:00:00Z")
    assert unrelated not in [A, X]
    assert image_at([A, X], NOW, "breaking").image == X


H1 = image("h1", "2024-01-01T00:00:00Z")
H2 = image("h2", "2024-02-01T00:00:00Z", "breaking")
H3 = image("h3", "2024-03-01T00:00:00Z")
H4 = image("h4", "2024-04-01T00:00:00Z", "breaking")
CHILD = image("child", "2024-05-01T00:00:00Z", child=True)


@pytest.mark.parametrize(
    ("history", "when", "tag", "expected", "rule"),
    [
        ([H1, H3], "2024-02-15T00:00:00Z", "breaking", H1, ImageRule.AT_OR_BEFORE),
        ([H1, H2, H3], "2024-01-15T00:00:00Z", "breaking", H2, ImageRule.BREAKING),
        ([H1, H2, H3], "2024-01-15T00:00:00Z", None, H1, ImageRule.AT_OR_BEFORE),
        ([H1, H2, H3], "2024-01-15T00:00:00Z", "other", H1, ImageRule.AT_OR_BEFORE),
        ([H1, H2, H3], "2024-02-15T00:00:00Z", "breaking", H2, ImageRule.AT_OR_BEFORE),
        ([H1, H2, H3, H4], "2024-01-15T00:00:00Z", "breaking", H4, ImageRule.BREAKING),
        ([H1, H2, H3, H4], "2024-03-15T00:00:00Z", "breaking", H4, ImageRule.BREAKING),
        ([H2, H3], "2023-01-01T00:00:00Z", "breaking", H2, ImageRule.BREAKING),
        ([H1, H3], "2023-01-01T00:00:00Z", "breaking", H1, ImageRule.OLDEST),
        ([H1, CHILD], "2024-06-01T00:00:00Z", "breaking", H1, ImageRule.AT_OR_BEFORE),
        ([H3, H1], "2024-12-01T00:00:00Z", "breaking", H3, ImageRule.AT_OR_BEFORE),
    ],
    ids=[
        "between releases -> older",
        "breaking after T -> moved up",
        "no breaking tag configured -> time rule",
        "other breaking tag name -> time rule",
        "breaking before T -> no move",
        "two breaking after T -> the newest",
        "breaking after T among later -> newest breaking",
        "breaking after T, nothing before -> breaking",
        "nothing before T -> oldest",
        "index child never chosen",
        "order of the listing does not matter",
    ],
)
def test_image_at(
    history: list[Image], when: str, tag: str | None, expected: Image, rule: ImageRule
) -> None:
    choice = image_at(history, utc(when), tag)
    assert choice.image == expected
    assert choice.rule == rule


def test_image_at_same_upload_time_is_deterministic() -> None:
    twin_a = Image(digest("a"), H1.uploaded)
    twin_b = Image(digest("b"), H1.uploaded)
    first = image_at([twin_a, twin_b], H1.uploaded, None).image
    second = image_at([twin_b, twin_a], H1.uploaded, None).image
    assert first == second


@pytest.mark.parametrize("history", [[], [CHILD]], ids=["empty", "only index children"])
def test_empty_history_is_an_error(history: list[Image]) -> None:
    with pytest.raises(EmptyHistory):
        image_at(history, NOW, "breaking")
    with pytest.raises(EmptyHistory):
        newest_image(history)


def test_newest_image_ignores_children() -> None:
    assert newest_image([H1, H3, CHILD]).image == H3


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (H1.digest[7:19], H1),
        (H3.digest[7:], H3),
    ],
    ids=["12 hex", "64 hex"],
)
def test_image_by_digest(prefix: str, expected: Image) -> None:
    assert image_by_digest([H1, H3], PinDigest(prefix, "label")).image == expected


def test_image_by_digest_unknown_and_ambiguous() -> None:
    with pytest.raises(UnknownDigest, match="not an image in the registry"):
        image_by_digest([H1], PinDigest("0" * 12, "pod label jetstream/pin"))
    one = Image("sha256:" + "ab" * 32, H1.uploaded)
    two = Image("sha256:" + "ab" * 6 + "cd" * 26, H1.uploaded)
    with pytest.raises(UnknownDigest, match="matches 2 images"):
        image_by_digest([one, two], PinDigest("ab" * 6, "label"))
    assert UnknownDigest.code == 422


C1 = commit("c1", "2024-01-01T00:00:00Z")
C2 = commit("c2", "2024-02-01T00:00:00Z")
C3 = commit("c3", "2024-03-01T00:00:00Z")


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2024-02-15T00:00:00Z", C2),
        ("2024-02-01T00:00:00Z", C2),
        ("2024-01-31T23:59:59Z", C1),
        ("2023-01-01T00:00:00Z", C1),
        ("2030-01-01T00:00:00Z", C3),
        (None, C3),
    ],
    ids=["between", "exactly at", "just before", "before all -> oldest", "future", "now"],
)
def test_commit_at(when: str | None, expected: Commit) -> None:
    assert commit_at([C3, C1, C2], utc(when) if when else None) == expected


def test_commit_at_empty() -> None:
    with pytest.raises(EmptyHistory):
        commit_at([], None)


@pytest.mark.parametrize(
    "slug",
    [
        "my-experiment",
        "a",
        "Firefox_Desktop.rollout-2",
        "0" * 200,
        "firefox-desktop-private-browsing-redesign-rollout",
    ],
)
def test_valid_slugs(slug: str) -> None:
    assert validate_slug(slug) == slug


@pytest.mark.parametrize(
    "slug",
    [
        "",
        "-leading-dash",
        ".leading-dot",
        "has space",
        "semi;colon",
        "a" * 201,
        "<script>",
        "new\nline",
        "ünïcode",
        "x' OR '1'='1",
        "a/b",
        "trailing\n",
    ],
)
def test_invalid_slugs(slug: str) -> None:
    with pytest.raises(InvalidSlug, match="is not valid"):
        validate_slug(slug)


def test_invalid_slug_message_is_bounded_and_ascii() -> None:
    with pytest.raises(InvalidSlug) as caught:
        validate_slug("\u202e" + "x" * 5000)
    message = str(caught.value)
    assert len(message) < 250
    assert message.isascii()


@pytest.mark.parametrize(
    ("slug", "table"),
    [
        ("my-experiment", "enrollments_my_experiment"),
        ("a.b-c_d", "enrollments_a_b_c_d"),
        ("Upper-Case", "enrollments_Upper_Case"),
    ],
)
def test_enrollments_table(slug: str, table: str) -> None:
    assert enrollments_table(slug) == table


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("latest", PinLatest("o")),
        ("0123456789ab", PinDigest("0123456789ab", "o")),
        ("a" * 63, PinDigest("a" * 63, "o")),
        ("sha256:" + "b" * 64, PinDigest("b" * 64, "o")),
    ],
)
def test_parse_pin(value: str, expected: object) -> None:
    assert parse_pin(value, "o") == expected


@pytest.mark.parametrize(
    "value",
    ["", "Latest", "LATEST", "0123456789a", "0123456789AB", "g" * 12, "newest", "sha256:", "v1.2"],
)
def test_parse_pin_refuses_with_accepted_forms(value: str) -> None:
    with pytest.raises(InvalidPin, match="accepted: 'latest'"):
        parse_pin(value, "pod label jetstream/pin")


def test_pod_pin_combines_label_and_annotation() -> None:
    full = "sha256:" + "c" * 64
    assert pod_pin(None, None) is None
    assert pod_pin("latest", None) == PinLatest("pod label jetstream/pin")
    assert pod_pin(None, full) == PinDigest("c" * 64, "pod annotation jetstream/pin-digest")
    assert pod_pin("c" * 12, full) == PinDigest("c" * 64, "pod annotation jetstream/pin-digest")
    with pytest.raises(InvalidPin, match="disagree"):
        pod_pin("latest", full)
    with pytest.raises(InvalidPin, match="sha256:<64 hex>"):
        pod_pin(None, "c" * 12)


@pytest.mark.parametrize(
    ("pin", "all_pinned", "enrolled", "rules", "expected"),
    [
        (None, False, True, [ImageRule.AT_OR_BEFORE], Reason.ENROLLMENT),
        (None, False, True, [ImageRule.OLDEST], Reason.ENROLLMENT),
        (None, False, True, [ImageRule.BREAKING], Reason.BREAKING),
        (None, False, False, [ImageRule.AT_OR_BEFORE], Reason.NOT_ENROLLED),
        (PinLatest("o"), False, True, [ImageRule.NEWEST], Reason.LATEST),
        (PinDigest("a" * 12, "o"), False, True, [ImageRule.DIGEST], Reason.OVERRIDE),
        (None, True, True, [], Reason.ALREADY_PINNED),
        (PinLatest("o"), True, True, [], Reason.ALREADY_PINNED),
    ],
)
def test_pod_reason(
    pin: PinLatest | PinDigest | None,
    all_pinned: bool,
    enrolled: bool,
    rules: list[ImageRule],
    expected: Reason,
) -> None:
    assert pod_reason(pin, all_pinned, enrolled, rules) == expected


# Properties over arbitrary histories: the rules hold for every input, not just the table.
moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2026, 1, 1), timezones=st.just(UTC)
)
histories = st.lists(
    st.builds(
        Image,
        digest=st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: f"sha256:{h}"),
        uploaded=moments,
        tags=st.frozensets(st.sampled_from(["breaking", "latest", "v1"]), max_size=2),
        index_child=st.booleans(),
    ),
    min_size=1,
    max_size=12,
)


@given(histories, moments)
def test_image_at_properties(history: list[Image], when: datetime) -> None:
    pool = [i for i in history if not i.index_child]
    if not pool:
        with pytest.raises(EmptyHistory):
            image_at(history, when, "breaking")
        return
    choice = image_at(history, when, "breaking")
    assert not choice.image.index_child
    later_breaking = [i for i in pool if "breaking" in i.tags and i.uploaded > when]
    if later_breaking:
        assert choice.rule == ImageRule.BREAKING
        assert choice.image.uploaded == max(i.uploaded for i in later_breaking)
    elif any(i.uploaded <= when for i in pool):
        assert choice.image.uploaded <= when
        assert not any(choice.image.uploaded < i.uploaded <= when for i in pool)
    else:
        assert choice.image.uploaded == min(i.uploaded for i in pool)


@given(
    st.lists(
        st.builds(
            Commit, sha=st.text("0123456789abcdef", min_size=40, max_size=40), committed=moments
        ),
        min_size=1,
        max_size=10,
    ),
    moments,
)
def test_commit_at_properties(commits: list[Commit], when: datetime) -> None:
    chosen = commit_at(commits, when)
    if any(c.committed <= when for c in commits):
        assert chosen.committed <= when
        assert not any(chosen.committed < c.committed <= when for c in commits)
    else:
        assert chosen.committed == min(c.committed for c in commits)
    assert commit_at(commits, when + timedelta(days=100000)).committed == max(
        c.committed for c in commits
    )
