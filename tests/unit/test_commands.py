"""Which commands are pinned, and the enrollment rules that add arguments (one row per case)."""

from __future__ import annotations

from typing import Any

import jsonpatch
import pytest

from harness.builders import ARGOEXEC, JETSTREAM, argo_pod, container, review_of, utc
from tests.support.fakes import World
from tests.support.kube import decode_patch
from webhook.admission.admitter import Outcome, Result
from webhook.core.argv import read_invocation
from webhook.core.commands import (
    DEFAULT_PINNED_COMMANDS,
    ArgsCannotBeAdded,
    ArgsRule,
    args_effects,
    args_to_add,
    unpinned_command,
)
from webhook.core.pods import Target, parse_image, read_pod
from webhook.core.review import parse_review

DISCRETE = ArgsRule(
    commands=frozenset({"run"}),
    enrolled_at_or_before=utc("2026-03-31T00:00:00Z"),
    add=("--no-discrete-metrics",),
    unless_present=frozenset({"--discrete-metrics", "--discrete_metrics", "--no_discrete_metrics"}),
)


def pod_running(*argv: str) -> dict[str, Any]:
    pod = argo_pod("my-experiment")
    pod["spec"]["containers"][1]["command"] = list(argv)
    return pod


@pytest.mark.parametrize(
    ("argv", "passes_as"),
    [
        (["jetstream", "--log_to_bigquery", "run", "--experiment_slug=s"], None),
        (["jetstream", "ensure-enrollments", "--experiment_slug=s"], None),
        (["jetstream", "export-statistics-to-json", "--experiment_slug=s"], None),
        (["jetstream", "export-metadata-to-json", "--experiment_slug=s"], None),
        (["jetstream", "rerun", "--experiment_slug=s"], "rerun"),
        (["jetstream", "rerun-config-changed", "--experiment_slug=s"], "rerun-config-changed"),
        (["jetstream", "rerun-skip", "--experiment_slug=s"], "rerun-skip"),
        (["jetstream", "run-argo", "--experiment_slug=s"], "run-argo"),
        (["jetstream", "preview", "--experiment_slug=s"], "preview"),
        (["jetstream", "validate_config", "--experiment_slug=s"], "validate_config"),
        (["sh", "-c", "jetstream rerun --experiment_slug=s"], "rerun"),
        # not recognised: pinned, the old and safe behaviour
        (["python", "analyse.py", "--experiment_slug=s"], None),
        (["jetstream", "--debug"], None),
    ],
)
def test_only_analysis_commands_are_pinned(argv: list[str], passes_as: str | None) -> None:
    facts = read_pod(pod_running(*argv), [JETSTREAM], "argo")
    assert unpinned_command(facts, DEFAULT_PINNED_COMMANDS) == passes_as


def test_a_pod_is_pinned_when_any_target_runs_an_analysis() -> None:
    pod = pod_running("jetstream", "rerun", "--experiment_slug=s")
    pod["spec"]["initContainers"].append(
        container("prep", f"{JETSTREAM}:latest", "jetstream", "ensure-enrollments")
    )
    facts = read_pod(pod, [JETSTREAM], "argo")
    assert unpinned_command(facts, DEFAULT_PINNED_COMMANDS) is None


def target(*argv: str, command: bool = True) -> Target:
    invocation = read_invocation(list(argv) if command else None, None if command else list(argv))
    ref = parse_image(f"{JETSTREAM}:latest")
    assert ref is not None
    return Target("containers", 1, "main", f"{JETSTREAM}:latest", ref, JETSTREAM, invocation)


@pytest.mark.parametrize(
    ("argv", "enrolled", "added"),
    [
        (
            ["jetstream", "run", "--experiment_slug=s"],
            "2024-01-01T00:00:00Z",
            ("--no-discrete-metrics",),
        ),
        (["jetstream", "run"], "2026-03-31T00:00:00Z", ("--no-discrete-metrics",)),  # on the day
        (["jetstream", "run"], "2026-03-31T00:00:01Z", ()),  # after it
        (["jetstream", "run"], None, ()),  # not enrolled: enrolls now, after the cutoff
        (["jetstream", "ensure-enrollments"], "2024-01-01T00:00:00Z", ()),  # other command
        (["jetstream", "run", "--discrete-metrics"], "2024-01-01T00:00:00Z", ()),  # explicit
        (["jetstream", "run", "--no-discrete-metrics"], "2024-01-01T00:00:00Z", ()),  # already
        (["jetstream", "run", "--no_discrete_metrics"], "2024-01-01T00:00:00Z", ()),
    ],
)
def test_enrollment_rules(argv: list[str], enrolled: str | None, added: tuple[str, ...]) -> None:
    when = utc(enrolled) if enrolled else None
    assert args_to_add([DISCRETE], target(*argv), when) == added


def test_a_rule_cannot_rewrite_a_shell_string() -> None:
    shell = target("sh", "-c", "jetstream run --experiment_slug=s")
    with pytest.raises(ArgsCannotBeAdded, match="inside a shell string"):
        args_to_add([DISCRETE], shell, utc("2024-01-01T00:00:00Z"))


def admit(world: World, pod: dict[str, Any], **options: Any) -> Result:
    return world.admitter(**options).admit(parse_review(review_of(pod)))


def applied(pod: dict[str, Any], result: Result) -> dict[str, Any]:
    after: dict[str, Any] = jsonpatch.apply_patch(pod, decode_patch(result.response))
    return after


def test_an_unpinned_command_passes_through_with_its_reason() -> None:
    world = World()
    pod = pod_running("jetstream", "rerun", "--experiment_slug=my-experiment")
    result = admit(world, pod)
    assert result.outcome == Outcome.PASS_THROUGH
    after = applied(pod, result)
    assert after["spec"] == pod["spec"]  # tooling unchanged
    assert after["metadata"]["annotations"] == {"jetstream/pin-reason": "not-pinned-command"}
    assert result.response["response"]["auditAnnotations"]["pin-reason"] == "not-pinned-command"
    assert world.lookups == 0
    again = admit(world, after)  # reinvocation: nothing more to do
    assert decode_patch(again.response) == []


def test_pinned_commands_are_configurable() -> None:
    world = World()
    pod = pod_running("jetstream", "rerun", "--experiment_slug=my-experiment")
    result = admit(world, pod, pinned_commands=["run", "rerun"])
    assert result.outcome == Outcome.PATCHED


@pytest.mark.parametrize(
    ("shape", "field"),
    [("command", "command"), ("args", "args"), ("entrypoint", "args")],
)
def test_the_rule_appends_to_the_line_and_records_it(shape: str, field: str) -> None:
    world = World(always_read_enrollment=True)
    pod = argo_pod("my-experiment")
    main = pod["spec"]["containers"][1]
    if shape == "args":
        main["command"], main["args"] = main["command"][:6], main["command"][6:]
    elif shape == "entrypoint":
        main["args"] = main.pop("command")[6:]
    result = admit(world, pod, args_rules=[DISCRETE])
    after = applied(pod, result)
    line = after["spec"]["containers"][1][field]
    assert line[-1] == "--no-discrete-metrics"
    assert after["metadata"]["annotations"]["jetstream/added-args"] == "--no-discrete-metrics"
    assert decode_patch(admit(world, after, args_rules=[DISCRETE]).response) == []


def test_the_rule_reads_enrollment_even_under_a_latest_pin() -> None:
    world = World(always_read_enrollment=True)
    pod = argo_pod("my-experiment", labels={"jetstream/pin": "latest"})
    result = admit(world, pod, args_rules=[DISCRETE])
    assert result.decision is not None
    assert str(result.decision.reason) == "latest"
    main = applied(pod, result)["spec"]["containers"][1]
    assert main["command"][-1] == "--no-discrete-metrics"


def test_a_rule_that_cannot_be_applied_refuses_the_pod() -> None:
    world = World()
    pod = pod_running("sh", "-c", "jetstream run --experiment_slug=my-experiment")
    result = admit(world, pod, args_rules=[DISCRETE])
    assert result.outcome == Outcome.REFUSED
    assert result.response["response"]["status"]["code"] == 422


def test_argo_executor_containers_are_never_given_arguments() -> None:
    world = World()
    pod = argo_pod("my-experiment")
    before = [c for c in pod["spec"]["containers"] if c["image"] == ARGOEXEC]
    after = applied(pod, admit(world, pod, args_rules=[DISCRETE]))
    assert [c for c in after["spec"]["containers"] if c["image"] == ARGOEXEC] == before


EXPORTS = ArgsRule(
    commands=frozenset({"export-statistics-to-json", "run"}),
    enrolled_at_or_before=utc("2025-06-30T12:00:00Z"),
    add=("--legacy-exports",),
)
UNLESS = ("--discrete-metrics", "--discrete_metrics", "--no-discrete-metrics",
          "--no_discrete_metrics")  # fmt: skip


@pytest.mark.parametrize(
    ("rules", "enrolled", "texts"),
    [
        ([DISCRETE], "2024-01-02T00:00:00Z",
         ["run: adds --no-discrete-metrics (enrolled 2024-01-02, on or before 2026-03-31; "
          f"not when the line has {', '.join(UNLESS)})"]),
        ([DISCRETE], "2026-03-31T00:00:00Z",
         [f"run: adds --no-discrete-metrics (enrolled 2026-03-31, on or before 2026-03-31; "
          f"not when the line has {', '.join(UNLESS)})"]),
        ([DISCRETE], "2026-03-31T00:00:01Z",
         ["run: adds nothing (enrolled 2026-03-31 00:00:01Z, after 2026-03-31)"]),
        ([DISCRETE], None, ["run: adds nothing (not enrolled: enrolls now)"]),
        ([DISCRETE, EXPORTS], "2025-06-30T12:00:00Z",
         [f"run: adds --no-discrete-metrics (enrolled 2025-06-30 12:00:00Z, on or before "
          f"2026-03-31; not when the line has {', '.join(UNLESS)})",
          "export-statistics-to-json: adds --legacy-exports (enrolled 2025-06-30 12:00:00Z, "
          "on or before 2025-06-30 12:00:00Z; not when the line has --legacy-exports)",
          "run: adds --legacy-exports (enrolled 2025-06-30 12:00:00Z, on or before "
          "2025-06-30 12:00:00Z; not when the line has --legacy-exports)"]),
        ([], "2024-01-02T00:00:00Z", []),
    ],
    ids=["before", "at the cutoff", "after", "not enrolled", "two rules", "no rule"],
)  # fmt: skip
def test_what_each_rule_adds_per_command(
    rules: list[ArgsRule], enrolled: str | None, texts: list[str]
) -> None:
    effects = args_effects(rules, utc(enrolled) if enrolled else None)
    assert [e.text() for e in effects] == texts
    # the same answer each rule gives a command line without any of its flags
    pairs = [(rule, command) for rule in rules for command in sorted(rule.commands)]
    for (rule, command), effect in zip(pairs, effects, strict=True):
        line = read_invocation(["jetstream", command, "--experiment_slug=s"], None)
        assert rule.applies(line, utc(enrolled) if enrolled else None) is bool(effect.adds)
