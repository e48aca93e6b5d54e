"""The admission handler: one AdmissionRequest in, one AdmissionReview response out.

It serialises the pod before, lets `mutation` change a copy, and derives the
JSONPatch from the difference. Every way a review can end is an `Outcome`;
responses, logs and metrics use the same words.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from webhook.admission.deadline import LookupPool, OutOfTime
from webhook.admission.resolver import LookupFailed, Resolver
from webhook.core import mutation
from webhook.core.commands import DEFAULT_PINNED_COMMANDS, ArgsRule, args_to_add, unpinned_command
from webhook.core.decision import Decision
from webhook.core.patch import Operation, json_patch
from webhook.core.pinning import PinDigest, PinLatest, Reason, Refusal
from webhook.core.pods import DEFAULT_LIMITS, PodFacts, PodLimits, read_pod
from webhook.core.review import AdmissionRequest, allowed, one_line, refused
from webhook.core.times import format_rfc3339
from webhook.sources import SourceError
from webhook.sources.nowait import NeedsLookup

log = logging.getLogger(__name__)

PIN_ERROR_LIMIT = 1024
NAME = "jetstream-pin"  # the source named when the webhook itself is the cause


class Outcome(StrEnum):
    PATCHED = "patched"
    UNCHANGED = "unchanged"
    PASS_THROUGH = "pass-through"  # noqa: S105 - an outcome, not a password
    IGNORED = "ignored"
    REFUSED = "refused"
    FAILED_DENIED = "lookup-failed-denied"
    FAILED_ALLOWED = "lookup-failed-allowed"
    AUDITED = "audited"


@dataclass
class Result:
    """A response plus what happened, for the decision log line and metrics."""

    response: dict[str, Any]
    outcome: Outcome
    facts: PodFacts | None = None
    decision: Decision | None = None
    patch: list[Operation] = field(default_factory=list)
    detail: str = ""

    def log_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"outcome": str(self.outcome)}
        if self.facts is not None:
            fields.update(namespace=self.facts.namespace, pod=self.facts.name, slug=self.facts.slug)
        if self.decision is not None:
            fields.update(_summary(self.decision))
        if self.detail:
            fields["detail"] = self.detail
        return fields


# What a decision also does outside the answer (an Event on the pod): called once
# per decided pod, never for dryRun or a decision read back from the pod itself.
DecisionSideEffect = Callable[[AdmissionRequest, PodFacts, Decision], None]


class Admitter:
    def __init__(
        self,
        resolver: Resolver,
        env_names: Mapping[str, str],
        mode: Literal["enforce", "audit"] = "enforce",
        on_error: Literal["deny", "allow"] = "deny",
        on_decision: Sequence[DecisionSideEffect] = (),
        deadline_seconds: float | None = None,
        lookups: LookupPool | None = None,
        limits: PodLimits = DEFAULT_LIMITS,
        pinned_commands: Sequence[str] = DEFAULT_PINNED_COMMANDS,
        args_rules: Sequence[ArgsRule] = (),
    ) -> None:
        """`deadline_seconds`: the wall-clock budget of one admission's lookups (None: none).

        Lookups then run in `lookups` (a pool of its own when not given), so
        the admission can stop waiting for them when the budget runs out.
        A decision is tried in the request's thread first, without waiting, and
        only goes to the pool when a cache would have to load
        (webhook.admission.deadline).
        """
        self.resolver = resolver
        self.env_names = dict(env_names)
        self.mode = mode
        self.on_error = on_error
        self.on_decision = list(on_decision)
        self.deadline_seconds = deadline_seconds
        if deadline_seconds is not None and lookups is None:
            lookups = LookupPool(32)
        self.lookups = lookups
        self.limits = limits
        self.pinned_commands = frozenset(pinned_commands)
        self.args_rules = tuple(args_rules)

    def admit(self, request: AdmissionRequest, arrived: float | None = None) -> Result:
        """Decide one review; `arrived` (time.monotonic()) starts the deadline, default now."""
        if not request.is_pod_create:
            return Result(allowed(request.uid), Outcome.IGNORED)
        facts: PodFacts | None = None
        try:
            facts = read_pod(
                request.object, self.resolver.repositories, request.namespace, self.limits
            )
            settled = self._settled_without_lookup(request, facts)
            if settled is not None:
                return settled
            return self._pin(request, facts, time.monotonic() if arrived is None else arrived)
        except Refusal as err:
            return self._refuse(request, facts, err)
        except LookupFailed as err:
            return self._failed(request, facts, err)
        except NeedsLookup:
            raise  # on the event loop: decided again in an admission thread
        except Exception as err:
            log.exception("internal error while reviewing %s", request.uid)
            slug = facts.slug if facts and facts.slug else "?"
            failure = LookupFailed(slug, SourceError(NAME, type(err).__name__))
            return self._failed(request, facts, failure)

    def overloaded(self, request: AdmissionRequest, waited: float) -> Result:
        """The answer when no thread could start this review within its deadline.

        Reading the pod is cheap and needs no lookup, so pods that are not
        Jetstream's still pass; the others get the failure policy's answer.
        """
        facts: PodFacts | None = None
        try:
            if not request.is_pod_create:
                return Result(allowed(request.uid), Outcome.IGNORED)
            facts = read_pod(
                request.object, self.resolver.repositories, request.namespace, self.limits
            )
            settled = self._settled_without_lookup(request, facts)
            if settled is not None:
                return settled
        except Refusal as err:
            return self._refuse(request, facts, err)
        cause = f"every admission thread was busy: not started within {waited:.1f}s"
        return self._failed(
            request, facts, LookupFailed(facts.slug or "?", SourceError(NAME, cause))
        )

    def _settled_without_lookup(self, request: AdmissionRequest, facts: PodFacts) -> Result | None:
        """The answer for a pod that needs no decision (not Jetstream's, or a command
        that is not pinned); None for one that does."""
        if facts.slug is None or not facts.targets:
            return Result(allowed(request.uid), Outcome.PASS_THROUGH, facts)
        command = unpinned_command(facts, self.pinned_commands)
        if command is not None:
            return self._not_pinned(request, facts, command)
        return None

    def _not_pinned(self, request: AdmissionRequest, facts: PodFacts, command: str) -> Result:
        """A command Jetstream runs on the newest image by design: unchanged but for the reason."""
        detail = f"jetstream {command} is not a pinned command (pinnedCommands)"
        if self.mode == "audit":
            return Result(allowed(request.uid), Outcome.PASS_THROUGH, facts, detail=detail)
        pod = request.object
        patch = json_patch(pod, mutation.mark_command(pod, str(Reason.NOT_PINNED_COMMAND)))
        audit = {"slug": facts.slug or "", "pin-reason": str(Reason.NOT_PINNED_COMMAND)}
        response = allowed(request.uid, patch, audit=audit)
        return Result(response, Outcome.PASS_THROUGH, facts, patch=patch, detail=detail)

    def _decide(self, facts: PodFacts, arrived: float, record: bool) -> Decision:
        budget = self.deadline_seconds

        def decide() -> Decision:
            return self.resolver.decide(facts, record)

        if budget is None or self.lookups is None:
            return decide()
        try:
            return self.lookups.run(decide, arrived + budget, budget)
        except OutOfTime as err:
            if err.source is None:
                source = NAME
                cause = f"every lookup thread was busy: not started within {budget:g}s"
            else:
                source, cause = (
                    err.source,
                    f"no answer within the admission deadline of {budget:g}s",
                )
            raise LookupFailed(facts.slug or "?", SourceError(source, cause)) from None

    def _pin(self, request: AdmissionRequest, facts: PodFacts, arrived: float) -> Result:
        pod = request.object
        previous = mutation.recorded(facts, list(self.env_names))
        record = self.mode == "enforce" and not request.dry_run  # no side effect otherwise
        decision = previous.decision if previous else self._decide(facts, arrived, record)
        added = {
            target.path: args
            for target in facts.targets
            if (args := args_to_add(self.args_rules, target, decision.enrolled_at))
        }
        original = previous.original if previous else None
        after = mutation.pin_pod(pod, facts, decision, self.env_names, original, added)
        patch = json_patch(pod, after)
        audit = _audit_annotations(decision, after)
        if self.mode == "audit":
            note = f"jetstream-pin audit mode: would pin {facts.slug} ({decision.reason})"
            return Result(
                allowed(request.uid, warnings=[note], audit=audit),
                Outcome.AUDITED,
                facts,
                decision,
                patch,
            )
        if previous is None and not request.dry_run:  # dryRun: no side effects
            for side_effect in self.on_decision:
                side_effect(request, facts, decision)
        warnings = [_override_warning(decision)] if decision.pin is not None else []
        outcome = Outcome.PATCHED if patch else Outcome.UNCHANGED
        response = allowed(request.uid, patch, warnings, audit)
        return Result(response, outcome, facts, decision, patch)

    def _refuse(self, request: AdmissionRequest, facts: PodFacts | None, err: Refusal) -> Result:
        message = f"jetstream-pin: {err}"
        if self.mode == "audit":
            warning = f"jetstream-pin audit mode: would refuse: {err}"
            return Result(
                allowed(request.uid, warnings=[warning]), Outcome.AUDITED, facts, detail=str(err)
            )
        response = refused(request.uid, err.code, err.reason, message)
        return Result(response, Outcome.REFUSED, facts, detail=str(err))

    def _failed(
        self, request: AdmissionRequest, facts: PodFacts | None, err: LookupFailed
    ) -> Result:
        detail = str(err)
        if self.mode == "audit":
            warning = f"jetstream-pin audit mode: {err.source} failed for {err.slug}"
            return Result(
                allowed(request.uid, warnings=[warning]), Outcome.AUDITED, facts, detail=detail
            )
        if self.on_error == "allow":
            pod = request.object
            after = mutation.mark_error(pod, detail[:PIN_ERROR_LIMIT])
            warning = f"jetstream-pin: {err.slug} admitted unpinned: {err.source} failed"
            response = allowed(
                request.uid,
                json_patch(pod, after),
                [warning],
                {"pin-error": one_line(detail, PIN_ERROR_LIMIT)},
            )
            return Result(response, Outcome.FAILED_ALLOWED, facts, detail=detail)
        message = f"jetstream-pin: {detail}; the pod creation can be retried"
        response = refused(request.uid, 503, "ServiceUnavailable", message)
        return Result(response, Outcome.FAILED_DENIED, facts, detail=detail)


def _summary(decision: Decision) -> dict[str, Any]:
    summary: dict[str, Any] = {"reason": str(decision.reason)}
    if decision.enrollment_consulted:
        when = decision.enrolled_at
        summary["enrolled_at"] = format_rfc3339(when) if when else mutation.NOT_ENROLLED
    digests = {repo: c.image.digest for repo, c in decision.choices.items()}
    if digests:
        summary["images"] = digests
    summary["shas"] = dict(decision.shas)
    if decision.dataset is not None:
        summary["dataset"] = str(decision.dataset)
    if decision.workflow_record:
        summary["workflow_record"] = decision.workflow_record
    return summary


def _audit_annotations(decision: Decision, pod: Mapping[str, Any]) -> dict[str, str]:
    """The decision's annotations again, for the API server's audit log (no '/' in keys)."""
    notes = pod["metadata"]["annotations"]
    names = [mutation.PINNED_IMAGE, mutation.ORIGINAL_IMAGE, mutation.ENROLLED_AT]
    names += [mutation.sha_annotation(repo) for repo in decision.shas]
    audit = {"slug": decision.slug, "pin-reason": str(decision.reason)}
    for name in names:
        if name in notes:
            audit[name.removeprefix(mutation.PREFIX)] = notes[name]
    return audit


def _override_warning(decision: Decision) -> str:
    pin = decision.pin
    what = "latest" if isinstance(pin, PinLatest) else "an image digest"
    if isinstance(pin, PinDigest):
        what = f"sha256:{pin.prefix[:12]}"
    origin = pin.origin if pin is not None else ""
    return f"jetstream-pin: {decision.slug} pinned to {what} by {origin}"
