"""Which experiment an enrollments table belongs to: known, or shown as the table."""

from __future__ import annotations

import pytest

from webhook.core.slugs import SlugFinding, SlugSource, find_slug, name_is_exact

DESC, NAME, KNOWN, TABLE = (SlugSource.DESCRIPTION, SlugSource.TABLE_NAME,
                            SlugSource.KNOWN_SLUG, SlugSource.TABLE_ONLY)  # fmt: skip


@pytest.mark.parametrize(
    ("table", "description", "known", "found"),
    [
        # Jetstream's description is the truth, whatever else is known
        ("enrollments_my_experiment", "my-experiment", (), SlugFinding("my-experiment", DESC)),
        ("enrollments_my_experiment", "my.experiment", ("my-experiment",),
         SlugFinding("my.experiment", DESC)),
        ("enrollments_my_experiment", "my_experiment", (), SlugFinding("my_experiment", DESC)),
        # a description that is no valid slug of this table is free text
        ("enrollments_my_experiment", "My experiment", (), SlugFinding(None, TABLE)),
        ("enrollments_my_experiment", "other-experiment", (), SlugFinding(None, TABLE)),
        ("enrollments_my_experiment", "-my-experiment", (), SlugFinding(None, TABLE)),
        ("enrollments_my_experiment", "", (), SlugFinding(None, TABLE)),
        # no '_' after the prefix: nothing was replaced, the name is the slug
        ("enrollments_solo", None, (), SlugFinding("solo", NAME)),
        ("enrollments_Solo42", None, ("x",), SlugFinding("Solo42", NAME)),
        # the one known slug of that table (an overrides entry, an admitted pod)
        ("enrollments_my_experiment", None, ("my-experiment", "other"),
         SlugFinding("my-experiment", KNOWN)),
        ("enrollments_my_experiment", None, ("my-experiment", "my-experiment"),
         SlugFinding("my-experiment", KNOWN)),
        # several: unknown, and they are named
        ("enrollments_my_experiment", None, ("my.experiment", "my-experiment"),
         SlugFinding(None, TABLE, ("my-experiment", "my.experiment"))),
        # known text that is no valid slug never names a table
        ("enrollments_my_experiment", None, ("my experiment",), SlugFinding(None, TABLE)),
        ("enrollments_my_experiment", None, (), SlugFinding(None, TABLE)),
    ],
)  # fmt: skip
def test_find_slug(
    table: str, description: str | None, known: tuple[str, ...], found: SlugFinding
) -> None:
    assert find_slug(table, description, known) == found


@pytest.mark.parametrize(
    ("table", "exact"),
    [("enrollments_solo", True), ("enrollments_a_b", False), ("enrollments_", True)],
)
def test_name_is_exact(table: str, exact: bool) -> None:
    assert name_is_exact(table) is exact
