"""Which BigQuery dataset an experiment's enrollments table is read from.

Jetstream reads the enrollments table from the project and dataset its
command line names (`--project_id`, `--dataset_id`; its defaults otherwise),
so the webhook must read the same one. But a pod is untrusted input and the
webhook queries BigQuery with its own credentials: only datasets on the
configured allow-list are ever read, and a pod naming another one is refused
before any query. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from webhook.core.pinning import Refusal, describe_value

ALLOW_LIST_KEY = "enrollments.allowedDatasets"


class DatasetNotAllowed(Refusal):
    """The pod names a dataset the webhook may not read; retrying will not help."""


@dataclass(frozen=True, order=True)
class Dataset:
    project: str
    dataset: str

    def __str__(self) -> str:
        return f"{self.project}.{self.dataset}"

    @classmethod
    def parse(cls, text: str) -> Dataset:
        """`project.dataset` (a domain-scoped project `example.com:p` keeps its dot)."""
        project, dot, dataset = text.rpartition(".")
        if not dot or not project or not dataset:
            raise ValueError(f"{text!r} is not 'project.dataset'")
        return cls(project, dataset)


@dataclass(frozen=True)
class DatasetPolicy:
    """The configured dataset (for pods that name none) and every dataset that may be read."""

    default: Dataset
    allowed: frozenset[Dataset]

    @classmethod
    def of(cls, default: Dataset, allowed: Iterable[Dataset] = ()) -> DatasetPolicy:
        """`allowed` empty: the default dataset alone."""
        return cls(default, frozenset(allowed) or frozenset({default}))

    def choose(self, slug: str, project: str | None, dataset: str | None) -> Dataset:
        """The dataset a pod's command line names for `slug`, if it may be read."""
        chosen = Dataset(project or self.default.project, dataset or self.default.dataset)
        if chosen in self.allowed:
            return chosen
        raise DatasetNotAllowed(
            f"experiment {describe_value(slug)} names the enrollments dataset "
            f"{describe_value(str(chosen), 120)} (--project_id/--dataset_id), which jetstream-pin "
            f"may not read; to allow it, add it to {ALLOW_LIST_KEY}"
        )
