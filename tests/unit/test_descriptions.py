"""Table descriptions for the report: bounded per report, remembered per table, failures not."""

from __future__ import annotations

import threading

from webhook.core.datasets import Dataset
from webhook.sources import SourceError
from webhook.sources.descriptions import Descriptions

D = Dataset("p", "d")


class Describer:
    def __init__(self, fail: set[str] | None = None) -> None:
        self.asked: list[str] = []
        self.fail = fail or set()
        self.lock = threading.Lock()

    def __call__(self, dataset: Dataset, table: str) -> str | None:
        with self.lock:
            self.asked.append(table)
        if table in self.fail:
            raise SourceError("bigquery", f"tables.get {table}: HTTP 503")
        return None if table.endswith("none") else table.upper()


def test_descriptions_are_read_once_per_table() -> None:
    describer = Describer()
    descriptions = Descriptions(describer)
    wanted = [(D, "t1"), (D, "t_none"), (D, "t1")]
    assert descriptions.of(wanted) == {(D, "t1"): "T1", (D, "t_none"): None}
    assert descriptions.of(wanted) == {(D, "t1"): "T1", (D, "t_none"): None}
    assert sorted(describer.asked) == ["t1", "t_none"], "a table without one is remembered too"


def test_at_most_budget_reads_per_report_the_rest_later() -> None:
    describer = Describer()
    descriptions = Descriptions(describer, budget=3, parallel=2)
    wanted = [(D, f"t{n}") for n in range(5)]
    assert len(descriptions.of(wanted)) == 3
    assert len(describer.asked) == 3
    assert len(descriptions.of(wanted)) == 5
    assert sorted(describer.asked) == [f"t{n}" for n in range(5)]


def test_a_failed_read_is_left_out_and_tried_again() -> None:
    describer = Describer(fail={"t2"})
    descriptions = Descriptions(describer)
    assert descriptions.of([(D, "t1"), (D, "t2")]) == {(D, "t1"): "T1"}
    describer.fail.clear()
    assert descriptions.of([(D, "t1"), (D, "t2")]) == {(D, "t1"): "T1", (D, "t2"): "T2"}
    assert describer.asked.count("t2") == 2
    assert describer.asked.count("t1") == 1
