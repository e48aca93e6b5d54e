"""Asks the sources for facts and the pure rules for a decision.

This is the only place where lookups happen during an admission. Every
lookup goes through `_lookup`, which turns any failure into a `LookupFailed`
naming the source, so the failure policy is applied in exactly one way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from webhook.admission.deadline import entering
from webhook.core.datasets import Dataset, DatasetPolicy
from webhook.core.decision import Decision
from webhook.core.pinning import (
    EmptyHistory,
    ImageChoice,
    Pin,
    PinDigest,
    PinLatest,
    Reason,
    Refusal,
    describe_value,
    image_at,
    image_by_digest,
    newest_image,
    parse_pin,
    pod_pin,
    pod_reason,
    uploaded_by,
    validate_slug,
)
from webhook.core.pods import Experiment, ImageRef, PodFacts, Target
from webhook.core.times import utc_now
from webhook.core.workflow_record import ExperimentDecision, record_key
from webhook.sources import (
    ConfigHistory,
    EnrollmentClock,
    ImageHistory,
    NoOverrides,
    OverrideSource,
    SourceError,
    WorkflowDecisions,
    WorkflowState,
)
from webhook.sources.nowait import NeedsLookup, NeverWaits

DEFAULT_DATASETS = DatasetPolicy.of(Dataset("moz-fx-data-experiments", "mozanalysis"))

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ImageTarget:
    repository: str
    breaking_tag: str | None
    history: ImageHistory


@dataclass(frozen=True)
class ConfigRepo:
    name: str
    env: str
    history: ConfigHistory


class DifferentTooling(Refusal):
    """A pod names several experiments that run on different tooling."""


class LookupFailed(Exception):
    def __init__(self, slug: str, error: SourceError) -> None:
        super().__init__(f"cannot pin experiment {slug!r}: {error.source} failed: {error.cause}")
        self.slug = slug
        self.source = error.source
        self.cause = error.cause


class Resolver:
    """Decides pods: each experiment once per Workflow, from facts the sources give.

    Every source must be a `NeverWaits` (a cache, or an answer from memory), or
    the constructor raises TypeError naming it: the worker's event loop tries
    decisions without waiting, and one source that waited would block every
    connection of the worker.

    `workflows` (the Kubernetes API; None without one): where each Workflow's
    decisions are recorded and read back. Without it, or for a pod outside
    any Workflow, every pod is decided on its own.
    """

    def __init__(
        self,
        images: Sequence[ImageTarget],
        enrollments: EnrollmentClock,
        config_repos: Sequence[ConfigRepo] = (),
        overrides: OverrideSource | None = None,
        now: Callable[[], datetime] = utc_now,
        datasets: DatasetPolicy = DEFAULT_DATASETS,
        workflows: WorkflowDecisions | None = None,
        always_read_enrollment: bool = False,
    ) -> None:
        """`always_read_enrollment`: read the enrollment time even under a `latest` pin
        (enrollment rules add arguments by it whatever image runs)."""
        self.images = {target.repository: target for target in images}
        self.enrollments = enrollments
        self.config_repos = tuple(config_repos)
        self.overrides = overrides or NoOverrides()
        self.now = now
        self.datasets = datasets
        self.workflows = workflows
        self.always_read_enrollment = always_read_enrollment
        sources: tuple[object, ...] = (
            *(target.history for target in images),
            enrollments,
            *(repo.history for repo in self.config_repos),
            self.overrides,
            *([workflows] if workflows is not None else []),
        )
        for source in sources:
            if not isinstance(source, NeverWaits):
                name = getattr(source, "name", type(source).__name__)
                raise TypeError(
                    f"{name} ({type(source).__name__}) may wait on a backend: put it behind "
                    "a cache (webhook.sources.cached) so that a decision can be tried "
                    "without waiting (webhook.sources.nowait)"
                )

    @property
    def repositories(self) -> list[str]:
        return list(self.images)

    def decide(self, facts: PodFacts, record: bool = True) -> Decision:
        """The pod's decision; `record` False (dry run, audit): nothing written anywhere.

        A pod naming several experiments is pinned when they all run on the
        same tooling (images for its targets, config SHAs), refused otherwise.
        """
        if not facts.experiments:
            raise ValueError("decide() needs a pod with a slug")
        named = [
            (validate_slug(e.slug), self.datasets.choose(e.slug, e.project, e.dataset))
            for e in facts.experiments
        ]
        own_pin = pod_pin(facts.pin_label, facts.pin_digest_annotation)
        pending = list(dict.fromkeys(t.repository for t in facts.targets if not t.pinned))
        decisions = [
            self._experiment(facts, slug, dataset, own_pin, pending, record)
            for slug, dataset in dict.fromkeys(named)
        ]
        _check_same_tooling(decisions, pending)
        return decisions[0]

    def facts_for_slug(
        self, slug: str, pin: str | None = None, dataset: Dataset | None = None
    ) -> PodFacts:
        """A pod running every configured image for `slug`: what `explain` reasons about."""
        targets = tuple(
            Target("containers", i, f"c{i}", f"{repo}:latest", ImageRef(repo, "latest", None), repo)
            for i, repo in enumerate(self.images)
        )
        labels = {"jetstream/pin": pin} if pin is not None else {}
        chosen = dataset or self.datasets.default
        experiment = Experiment(slug, chosen.project, chosen.dataset)
        return PodFacts("", "", labels, {}, targets, slug, "--slug", (experiment,))

    def _experiment(
        self,
        facts: PodFacts,
        slug: str,
        dataset: Dataset,
        own_pin: Pin | None,
        pending: Sequence[str],
        record: bool,
    ) -> Decision:
        workflows = self.workflows
        workflow = facts.workflow
        if own_pin is not None or workflows is None or not workflow or not facts.namespace:
            pin = own_pin or self._pin(facts, slug)
            return self._for_pod(self._decide(slug, dataset, pin, pending), pending)
        key = record_key(dataset, slug)
        if facts.workflow_uid is not None:
            remembered = workflows.remembered(facts.workflow_uid, key)
            if remembered is not None:
                return self._for_pod(remembered, pending, "read")
        state = self._lookup(
            slug, workflows.name, lambda: workflows.workflow(facts.namespace, workflow)
        )
        if state is None or (facts.workflow_uid not in (None, state.uid)):
            # No such Workflow (any more): the pod is decided on its own.
            pin = self._pin(facts, slug)
            return self._for_pod(self._decide(slug, dataset, pin, pending), pending)
        found = self._lookup(slug, workflows.name, lambda: workflows.recorded(state, key))
        if found is not None:
            return self._for_pod(found, pending, "read")
        pin = self._workflow_pin(state, slug)
        decided = self._decide(slug, dataset, pin, list(self.images), state)
        if not record:
            return self._for_pod(decided, pending)
        winner = self._lookup(
            slug, workflows.name, lambda: workflows.record(state, key, decided, facts.name)
        )
        return self._for_pod(winner, pending, "recorded" if winner is decided else "read")

    def _decide(
        self,
        slug: str,
        dataset: Dataset,
        pin: Pin | None,
        repositories: Sequence[str],
        workflow: WorkflowState | None = None,
    ) -> ExperimentDecision:
        """The experiment's tooling for `repositories`.

        For a Workflow's first decision (`workflow`), as Jetstream decides when it
        submits: as of the Workflow's creation (the images uploaded by then; "now"
        for an experiment not enrolled is that moment), from an enrollment time
        and overrides read after it. Two replicas deciding the same experiment of
        one Workflow then decide alike unless its table is touched in between.
        """
        fresh_since = workflow.fresh_since if workflow else None
        as_of = workflow.as_of if workflow else None
        latest = isinstance(pin, PinLatest)
        needs_time = self.always_read_enrollment or (
            not latest
            and (bool(self.config_repos) or (bool(repositories) and not isinstance(pin, PinDigest)))
        )
        enrolled_at: datetime | None = None
        when: datetime | None = None
        if needs_time:
            enrolled_at = self._lookup(
                slug,
                self.enrollments.name,
                lambda: self.enrollments.enrolled_at(slug, dataset, fresh_since),
            )
            when = None if latest else enrolled_at or as_of or self.now()
        choices = {
            repo: self._choose(slug, self.images[repo], pin, when, as_of) for repo in repositories
        }
        # Config repos follow the enrollment time; not enrolled (or latest) means the tip
        # (as it was at the Workflow's creation, for a Workflow).
        config_time = as_of if latest else enrolled_at or as_of
        shas = {
            repo.name: self._lookup(slug, repo.history.name, _sha_at(repo.history, config_time))
            for repo in self.config_repos
        }
        reason = pod_reason(
            pin,
            all_targets_pinned=False,
            enrolled=enrolled_at is not None or not needs_time,
            rules=[choice.rule for choice in choices.values()],
        )
        return ExperimentDecision(
            slug, dataset, reason, enrolled_at, needs_time, choices, shas, pin
        )

    @staticmethod
    def _for_pod(
        decided: ExperimentDecision, pending: Sequence[str], workflow_record: str = ""
    ) -> Decision:
        """The experiment's decision as one pod runs it: only its targets not given by digest."""
        reason = Reason.ALREADY_PINNED if not pending else decided.reason
        return Decision(
            slug=decided.slug,
            reason=reason,
            enrolled_at=decided.enrolled_at,
            enrollment_consulted=decided.enrollment_consulted,
            choices={r: c for r, c in decided.choices.items() if r in pending},
            shas=decided.shas,
            pin=decided.pin,
            dataset=decided.dataset,
            workflow_record=workflow_record,
        )

    def _pin(self, facts: PodFacts, slug: str) -> Pin | None:
        own = pod_pin(facts.pin_label, facts.pin_digest_annotation)
        if own is not None:
            return own
        if facts.workflow:
            workflow = facts.workflow
            value = self._lookup(
                slug,
                self.overrides.name,
                lambda: self.overrides.workflow_pin(facts.namespace, workflow),
            )
            if value is not None:
                return parse_pin(value, f"label jetstream/pin of Workflow {workflow}")
        value = self._lookup(slug, self.overrides.name, lambda: self.overrides.slug_pin(slug))
        if value is not None:
            return parse_pin(value, f"overrides entry for {slug}")
        return None

    def _workflow_pin(self, state: WorkflowState, slug: str) -> Pin | None:
        """The Workflow's own label, else the overrides entry as it stood at its creation."""
        if state.pin_label is not None:
            return parse_pin(state.pin_label, f"label jetstream/pin of Workflow {state.name}")
        value = self._lookup(
            slug, self.overrides.name, lambda: self.overrides.slug_pin(slug, state.fresh_since)
        )
        if value is not None:
            return parse_pin(value, f"overrides entry for {slug}")
        return None

    def _choose(
        self,
        slug: str,
        target: ImageTarget,
        pin: Pin | None,
        when: datetime | None,
        as_of: datetime | None = None,
    ) -> ImageChoice:
        history = target.history
        images = self._lookup(slug, history.name, history.images)
        if as_of is not None and not isinstance(pin, PinDigest):
            images = uploaded_by(images, as_of)

        def choose() -> ImageChoice:
            if isinstance(pin, PinDigest):
                return image_by_digest(images, pin)
            if isinstance(pin, PinLatest) or when is None:
                return newest_image(images)
            return image_at(images, when, target.breaking_tag)

        return self._lookup(slug, history.name, choose)

    def _lookup(self, slug: str, source: str, call: Callable[[], T]) -> T:
        entering(source)
        try:
            return call()
        except SourceError as err:
            raise LookupFailed(slug, err) from err
        except EmptyHistory as err:
            raise LookupFailed(slug, SourceError(source, str(err))) from err
        except (LookupFailed, Refusal, NeedsLookup):
            raise
        except Exception as err:
            log.exception("unexpected error from %s", source)
            raise LookupFailed(slug, SourceError(source, type(err).__name__)) from err


def _check_same_tooling(decisions: Sequence[Decision], pending: Sequence[str]) -> None:
    """Several experiments in one pod must agree on every image it pins and every SHA."""
    first = decisions[0]
    tooling = ({r: first.digest_for(r) for r in pending}, dict(first.shas))
    for other in decisions[1:]:
        if ({r: other.digest_for(r) for r in pending}, dict(other.shas)) != tooling:
            names = ", ".join(describe_value(d.slug, 40) for d in decisions[:4])
            raise DifferentTooling(
                f"the pod names experiments {names} whose tooling differs "
                f"({first.slug}: {_tooling_text(first, pending)}; "
                f"{other.slug}: {_tooling_text(other, pending)}); "
                "run experiments with different tooling in separate pods"
            )


def _tooling_text(decision: Decision, pending: Sequence[str]) -> str:
    images = [f"{decision.digest_for(r) or 'given'}"[:19] for r in pending]
    shas = [f"{name} {sha[:12]}" for name, sha in decision.shas.items()]
    return ", ".join(images + shas) or "nothing to pin"


def _sha_at(history: ConfigHistory, when: datetime | None) -> Callable[[], str]:
    return lambda: history.sha_at(when)
