"""Writing a decision onto a copy of the pod, and reading it back.

The annotations written here are the pod's record of what it was pinned to.
Reading them back makes re-invocation idempotent: a pod that already carries
its result is recognised without any lookup and gets an empty patch.

The copy shares every part of the pod it does not change (copy on write
along the changed paths only): a pod carries kilobytes of managedFields and
volumes that a deep copy, and then the diff, would walk for nothing. The
patch derivation skips shared parts by identity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from webhook.admission.resolver import Decision
from webhook.core.pinning import Reason
from webhook.core.pods import MalformedPod, PodFacts

PREFIX = "jetstream/"
PINNED_IMAGE = "jetstream/pinned-image"
ORIGINAL_IMAGE = "jetstream/original-image"
ENROLLED_AT = "jetstream/enrolled-at"
PIN_REASON = "jetstream/pin-reason"
PIN_ERROR = "jetstream/pin-error"
ADDED_ARGS = "jetstream/added-args"
NOT_ENROLLED = "none"


def sha_annotation(repo_name: str) -> str:
    """`metric-hub` -> `jetstream/metric-hub-sha`; one per configured config repo."""
    return f"{PREFIX}{repo_name}-sha"


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC, whole seconds: `2024-05-30T02:00:00Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def joined(values: Sequence[str]) -> str:
    return ",".join(dict.fromkeys(values))


@dataclass(frozen=True)
class Recorded:
    """A decision found on the pod itself, with the images it replaced."""

    decision: Decision
    original: str


def recorded(facts: PodFacts, repo_names: Sequence[str]) -> Recorded | None:
    """The decision a pod already carries, if its targets still run the pinned images."""
    notes = facts.annotations
    if PIN_REASON not in notes:  # the common case: a pod never reviewed, no exception raised
        return None
    try:
        reason = Reason(notes[PIN_REASON])
    except ValueError:
        return None
    pinned = notes.get(PINNED_IMAGE, "").split(",")
    if not facts.targets or any(not t.pinned or t.image not in pinned for t in facts.targets):
        return None
    shas = {name: notes.get(sha_annotation(name), "") for name in repo_names}
    if not all(shas.values()) or ORIGINAL_IMAGE not in notes:
        return None
    enrolled_text = notes.get(ENROLLED_AT)
    enrolled_at = None
    if enrolled_text not in (None, NOT_ENROLLED):
        enrolled_at = parse_time(enrolled_text)
        if enrolled_at is None:
            return None
    decision = Decision(
        slug=facts.slug or "",
        reason=reason,
        enrolled_at=enrolled_at,
        enrollment_consulted=enrolled_text is not None,
        choices={},
        shas=shas,
    )
    return Recorded(decision, notes[ORIGINAL_IMAGE])


def decision_annotations(decision: Decision, pinned: str, original: str) -> dict[str, str]:
    notes = {PINNED_IMAGE: pinned, ORIGINAL_IMAGE: original, PIN_REASON: str(decision.reason)}
    if decision.enrollment_consulted:
        when = decision.enrolled_at
        notes[ENROLLED_AT] = format_time(when) if when else NOT_ENROLLED
    for name, sha in decision.shas.items():
        notes[sha_annotation(name)] = sha
    return notes


def pin_pod(
    pod: Mapping[str, Any],
    facts: PodFacts,
    decision: Decision,
    env_names: Mapping[str, str],
    original: str | None = None,
    added_args: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """A copy of `pod` running the decided images and config SHAs, annotated.

    `added_args`: arguments to append to a target's command line, by target path.
    """
    added_args = added_args or {}
    after = dict(pod)
    spec = after["spec"] = dict(after["spec"])
    for field in {t.field for t in facts.targets}:
        spec[field] = list(spec[field])
    pinned: list[str] = []
    for target in facts.targets:
        container = spec[target.field][target.index] = dict(spec[target.field][target.index])
        digest = None if target.pinned else decision.digest_for(target.repository)
        if digest is not None:
            container["image"] = target.ref.pinned_to(digest)
        pinned.append(container["image"])
        for name, sha in decision.shas.items():
            _set_env(container, env_names[name], sha, target.path)
        extra = added_args.get(target.path)
        if extra:
            _append_args(container, extra)
    notes = decision_annotations(
        decision, joined(pinned), original or joined([t.image for t in facts.targets])
    )
    every_added = [arg for args in added_args.values() for arg in args]
    if every_added:
        notes[ADDED_ARGS] = " ".join(dict.fromkeys(every_added))
    _annotate(after, notes)
    return after


def mark_command(pod: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """A copy of `pod` unchanged but for the reason it is not pinned."""
    after = dict(pod)
    _annotate(after, {PIN_REASON: reason})
    return after


def _append_args(container: dict[str, Any], extra: Sequence[str]) -> None:
    """Append to `args` when the container has them, else to `command` (a private copy).

    A container with neither runs the image's entrypoint, so the arguments
    become its `args`.
    """
    if container.get("args") is not None or container.get("command") is None:
        container["args"] = [*(container.get("args") or []), *extra]
    else:
        container["command"] = [*container["command"], *extra]


def mark_error(pod: Mapping[str, Any], message: str) -> dict[str, Any]:
    """A copy of `pod` admitted unchanged but for the reason it could not be pinned."""
    after = dict(pod)
    _annotate(after, {PIN_ERROR: message})
    return after


def _annotate(pod: dict[str, Any], notes: Mapping[str, str]) -> None:
    """Set annotations on `pod`, a shallow copy whose metadata is still shared."""
    metadata = pod["metadata"] = dict(pod.get("metadata") or {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), **notes}


def _set_env(container: dict[str, Any], name: str, value: str, path: str) -> None:
    """Set `name` in `container` (a private copy) without touching the shared env list."""
    env = container.get("env")
    if env is None:
        env = []
    if not isinstance(env, list) or not all(isinstance(e, dict) for e in env):
        raise MalformedPod(f"{path}.env must be a list of objects")
    replaced = [
        {**{k: v for k, v in e.items() if k != "valueFrom"}, "value": value}
        if e.get("name") == name
        else e
        for e in env
    ]
    if not any(e.get("name") == name for e in env):
        replaced.append({"name": name, "value": value})
    container["env"] = replaced
