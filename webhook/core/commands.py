"""Which Jetstream commands the webhook pins, and which arguments enrollment adds.

Jetstream pins the analysis steps of its workflow to the experiment's
tooling; its orchestration and adoption commands (`run-argo`, `rerun`,
`rerun-skip`, `preview`, ...) run on the newest image by design and choose
tooling themselves. Some arguments also depend on enrollment: Jetstream's
own submit adds `--no-discrete-metrics` for experiments enrolled before
discrete metrics became the default, which a workflow written before the
webhook cannot carry. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time

from webhook.core.argv import Invocation
from webhook.core.pinning import Refusal, describe_value
from webhook.core.pods import PodFacts, Target

DEFAULT_PINNED_COMMANDS = (
    "run",
    "ensure-enrollments",
    "export-statistics-to-json",
    "export-metadata-to-json",
)


class ArgsCannotBeAdded(Refusal):
    """An enrollment rule must add arguments to a line it cannot safely change."""

    code = 422
    reason = "Invalid"


def unpinned_command(facts: PodFacts, pinned: Iterable[str]) -> str | None:
    """The subcommand that lets this pod pass through unpinned, or None: it is pinned.

    A pod is pinned when any target container runs a pinned subcommand, or
    one that cannot be recognised (pinning an unknown command is the old,
    safe behaviour; leaving an analysis unpinned would mix tooling).
    """
    wanted = frozenset(pinned)
    commands = facts.subcommands
    if not commands or any(c is None or c in wanted for c in commands):
        return None
    return commands[0]


@dataclass(frozen=True)
class ArgsRule:
    """Add `add` to the given subcommands of experiments enrolled at or before a moment.

    Nothing is added when the line already has one of `unless_present` (the
    flags of `add` always count, so a re-invocation adds nothing twice).
    """

    commands: frozenset[str]
    enrolled_at_or_before: datetime
    add: tuple[str, ...]
    unless_present: frozenset[str] = frozenset()

    @property
    def blocking_flags(self) -> frozenset[str]:
        own = (a.partition("=")[0] for a in self.add if a.startswith("-"))
        return self.unless_present | frozenset(own)

    def applies(self, invocation: Invocation, enrolled_at: datetime | None) -> bool:
        return (
            invocation.subcommand in self.commands
            and enrolled_at is not None
            and enrolled_at <= self.enrolled_at_or_before
            and not (invocation.flags & self.blocking_flags)
        )


def args_to_add(
    rules: Sequence[ArgsRule], target: Target, enrolled_at: datetime | None
) -> tuple[str, ...]:
    """The arguments every applying rule adds to `target`'s command line, in rule order.

    `enrolled_at` is the experiment's enrollment time before any breaking
    release moved its image (None: not enrolled, so no rule applies).
    """
    added: list[str] = []
    for rule in rules:
        if rule.applies(target.invocation, enrolled_at):
            added += [a for a in rule.add if a not in added]
    if added and target.invocation.in_shell:
        raise ArgsCannotBeAdded(
            f"container {describe_value(target.name, 63)} must be given "
            f"{' '.join(added)} (an enrollment rule of enrollmentArgs), but its jetstream "
            "command line is inside a shell string that jetstream-pin does not rewrite; "
            "run jetstream without `sh -c`, or add the arguments in the workflow"
        )
    return tuple(added)


@dataclass(frozen=True)
class ArgsEffect:
    """What one rule adds to one command of an experiment, and why (what `explain` shows)."""

    command: str
    adds: tuple[str, ...]  # empty: nothing
    why: str
    unless_present: tuple[str, ...] = ()  # the flags that stop it on a given command line

    def text(self) -> str:
        added = f"adds {' '.join(self.adds)}" if self.adds else "adds nothing"
        unless = f"; not when the line has {', '.join(self.unless_present)}" if self.adds else ""
        return f"{self.command}: {added} ({self.why}{unless})"


def args_effects(rules: Sequence[ArgsRule], enrolled_at: datetime | None) -> list[ArgsEffect]:
    """Per rule and command, what is added for an experiment enrolled at `enrolled_at`.

    The same test as `ArgsRule.applies`, without a command line: the flags a
    line may already carry are listed instead of checked.
    """
    effects = []
    for rule in rules:
        cutoff = _moment(rule.enrolled_at_or_before)
        for command in sorted(rule.commands):
            if enrolled_at is None:
                effects.append(ArgsEffect(command, (), "not enrolled: enrolls now"))
            elif enrolled_at <= rule.enrolled_at_or_before:
                why = f"enrolled {_moment(enrolled_at)}, on or before {cutoff}"
                flags = tuple(sorted(rule.blocking_flags))
                effects.append(ArgsEffect(command, rule.add, why, flags))
            else:
                why = f"enrolled {_moment(enrolled_at)}, after {cutoff}"
                effects.append(ArgsEffect(command, (), why))
    return effects


def _moment(moment: datetime) -> str:
    """The day alone at midnight UTC (how cutoffs are written), else to the second."""
    utc = moment.astimezone(UTC)
    if utc.time() == time():
        return utc.strftime("%Y-%m-%d")
    return utc.strftime("%Y-%m-%d %H:%M:%SZ")
