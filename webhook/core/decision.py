"""What a pod should run: the resolver's answer, plain data the rest of the house reads.

It lives in the core so that the mutation, the inventory, tracing, Events and
the command line can read a decision without importing the layer that looks
facts up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from webhook.core.datasets import Dataset
from webhook.core.pinning import ImageChoice, Pin, Reason


@dataclass(frozen=True)
class Decision:
    """What a pod should run; plain data, written to the pod by `mutation`.

    `workflow_record`: "" (decided for this pod alone), "recorded" (decided
    here for the experiment in the pod's Workflow, and written onto it) or
    "read" (the decision recorded there for this experiment's first pod).
    """

    slug: str
    reason: Reason
    enrolled_at: datetime | None
    enrollment_consulted: bool
    choices: Mapping[str, ImageChoice]
    shas: Mapping[str, str]
    pin: Pin | None = None
    dataset: Dataset | None = None
    workflow_record: str = ""

    def digest_for(self, repository: str) -> str | None:
        choice = self.choices.get(repository)
        return choice.image.digest if choice else None
