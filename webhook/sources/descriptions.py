"""Enrollments tables' descriptions for the report: where Jetstream writes the real slug.

BigQuery's tables.list does not return descriptions; only tables.get does,
one table per call. So they are fetched only for the report and the status
page (never on the admission path), only for tables whose name does not
already give the slug, at most `budget` per report and `parallel` at once,
and remembered per table for the life of the process: Jetstream writes the
description when it creates the table and never changes it. A fetch that
fails is not remembered; its table is shown by name until a later report
reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from webhook.core.datasets import Dataset
from webhook.sources import SourceError
from webhook.sources.cache import TtlCache

log = logging.getLogger(__name__)

BUDGET = 1000
PARALLEL = 8
MAX_REMEMBERED = 100_000

Key = tuple[Dataset, str]


@dataclass(frozen=True)
class _Described:
    text: str | None  # None: the table has none (or is gone)


class Descriptions:
    """`describe(dataset, table)`: one tables.get; the description, or None."""

    def __init__(
        self,
        describe: Callable[[Dataset, str], str | None],
        budget: int = BUDGET,
        parallel: int = PARALLEL,
        max_entries: int = MAX_REMEMBERED,
    ) -> None:
        self._describe = describe
        self.budget = budget
        self.parallel = parallel
        self._known = TtlCache[Key, _Described](
            lambda _: float("inf"), max_entries, name="table-descriptions"
        )

    def of(self, tables: Sequence[Key]) -> dict[Key, str | None]:
        """The descriptions known or read now; a table left out could not be read this time."""
        found: dict[Key, str | None] = {}
        wanted: list[Key] = []
        for key in dict.fromkeys(tables):
            known = self._known.peek(key)
            if known is not None:
                found[key] = known.text
            else:
                wanted.append(key)
        fetch = wanted[: self.budget]
        if len(wanted) > len(fetch):
            log.info(
                "%d table descriptions left for later reports (at most %d are read per report)",
                len(wanted) - len(fetch), self.budget,
            )  # fmt: skip
        if not fetch:
            return found
        with ThreadPoolExecutor(min(self.parallel, len(fetch)), "describe") as pool:
            results = list(pool.map(self._read, fetch))
        failures = [err for _, err in results if err is not None]
        for key, (described, _) in zip(fetch, results, strict=True):
            if described is not None:
                self._known.put(key, described)
                found[key] = described.text
        if failures:
            log.warning(
                "%d of %d table descriptions could not be read (first: %s); those tables are "
                "shown by name", len(failures), len(fetch), failures[0],
            )  # fmt: skip
        return found

    def _read(self, key: Key) -> tuple[_Described | None, str | None]:
        try:
            return _Described(self._describe(*key)), None
        except SourceError as err:
            return None, str(err)
        except Exception as err:  # a failure costs this table's slug, never the report
            log.exception("unexpected error reading the description of %s.%s", *key)
            return None, type(err).__name__
