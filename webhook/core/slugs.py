"""Which experiment an enrollments table belongs to, without guessing.

Jetstream names an experiment's table `enrollments_<slug>` with every
character outside [A-Za-z0-9_] replaced by `_`, so the name loses `-` and
`.`: `enrollments_my_experiment` may be `my-experiment`, `my.experiment` or
`my_experiment`. Overrides are keyed by the real slug, so the report must not
decide under a name recovered from the table. Jetstream writes the slug as
the table's description, which BigQuery's tables.list does not return (only
tables.get does). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from webhook.core.pinning import TABLE_PREFIX, enrollments_table, is_valid_slug


class SlugSource(StrEnum):
    """How a listed experiment's slug is known."""

    STATIC = "static"  # the data file names it
    NOT_ENROLLED = "not-enrolled"  # the data file names it, with no enrollment yet
    DESCRIPTION = "description"  # the table's description, as Jetstream writes it
    TABLE_NAME = "table-name"  # the table's name, which has no `_`: nothing was replaced
    KNOWN_SLUG = "known-slug"  # the one known slug (overrides entry, admitted pod) of that table
    TABLE_ONLY = "table-only"  # only the table is known: no slug is claimed


@dataclass(frozen=True)
class SlugFinding:
    """The slug of a table, or None with the known slugs that share its table (if any)."""

    slug: str | None
    source: SlugSource
    candidates: tuple[str, ...] = ()


def table_suffix(table: str) -> str:
    return table.removeprefix(TABLE_PREFIX)


def name_is_exact(table: str) -> bool:
    """No `_` after the prefix: no character was replaced, the suffix is the slug."""
    return "_" not in table_suffix(table)


def find_slug(table: str, description: str | None, known: Iterable[str]) -> SlugFinding:
    """The slug of `table` from what is known of it, in order of trust.

    1. Its description, when it is a valid slug of this table (a description
       that is not is someone's free text and is ignored).
    2. Its name, when it has no `_` after the prefix.
    3. The one known slug (an overrides entry, a slug seen in a pod) whose table
       it is; several such slugs leave it unknown.
    Otherwise only the table is known.
    """
    if description and is_valid_slug(description) and enrollments_table(description) == table:
        return SlugFinding(description, SlugSource.DESCRIPTION)
    if name_is_exact(table):
        return SlugFinding(table_suffix(table), SlugSource.TABLE_NAME)
    matches = tuple(
        sorted({s for s in known if is_valid_slug(s) and enrollments_table(s) == table})
    )
    if len(matches) == 1:
        return SlugFinding(matches[0], SlugSource.KNOWN_SLUG)
    return SlugFinding(None, SlugSource.TABLE_ONLY, matches)
