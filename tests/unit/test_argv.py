"""Reading Jetstream's command line: subcommand, slugs and dataset, in every wrapping."""

from __future__ import annotations

import dataclasses

import pytest

from webhook.core.argv import Invocation, read_invocation

EMISSARY = ["/var/run/argo/argoexec", "emissary", "--loglevel", "info", "--"]


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        (["jetstream", "run", "--experiment_slug=abc"], None, ("run", ("abc",), None, None)),
        (["jetstream", "run", "--experiment_slug", "abc"], None, ("run", ("abc",), None, None)),
        (["jetstream", "run", "--experiment-slug=abc"], None, ("run", ("abc",), None, None)),
        (["jetstream", "run", "--experiment-slug", "abc"], None, ("run", ("abc",), None, None)),
        (
            [*EMISSARY, "jetstream", "--log_to_bigquery", "run", "--experiment_slug=abc"],
            None,
            ("run", ("abc",), None, None),
        ),
        # the image's ENTRYPOINT is jetstream: args alone are its command line
        (
            None,
            ["ensure-enrollments", "--experiment_slug=abc"],
            ("ensure-enrollments", ("abc",), None, None),
        ),
        # group options with a value as the next word are not the subcommand
        (
            [
                "jetstream",
                "--log_project_id",
                "p",
                "--log-source",
                "x",
                "export-statistics-to-json",
            ],
            None,
            ("export-statistics-to-json", (), None, None),
        ),
        (["jetstream", "--log_dataset_id=d", "--debug", "rerun"], None, ("rerun", (), None, None)),
        (["/usr/local/bin/jetstream", "run-argo"], None, ("run-argo", (), None, None)),
        (["python", "-m", "jetstream", "preview"], None, ("preview", (), None, None)),
        (["jetstream"], None, (None, (), None, None)),
        # a subcommand's option misplaced before it is read as a flag (click would
        # refuse the line; the admission policy reads it alike)
        (["jetstream", "--dataset_id", "d", "run"], None, ("d", (), None, "d")),
        (["jetstream", "--debug"], None, (None, (), None, None)),
        (["other-program", "--experiment_slug=abc"], None, (None, ("abc",), None, None)),
        # repeatable slugs, in order
        (
            ["jetstream", "rerun", "--experiment_slug=a", "--experiment-slug", "b"],
            None,
            ("rerun", ("a", "b"), None, None),
        ),
        # both spellings of project and dataset, `=` or the next word; the last one wins
        (
            ["jetstream", "run", "--project_id=p1", "--dataset-id", "d1", "--dataset_id=d2"],
            None,
            ("run", (), "p1", "d2"),
        ),
        (["jetstream", "run", "--project-id", "p2"], None, ("run", (), "p2", None)),
        # look-alikes are not the flags
        (
            ["jetstream", "run", "--log_project_id=x", "--experiment_slugs=abc", "--dataset_idx=1"],
            None,
            ("run", (), None, None),
        ),
        (["jetstream", "run", "--experiment_slug"], None, ("run", (), None, None)),
        (["jetstream", "run", "--experiment_slug="], None, ("run", ("",), None, None)),
    ],
)
def test_read_invocation(
    command: list[str] | None,
    args: list[str] | None,
    expected: tuple[str | None, tuple[str, ...], str | None, str | None],
) -> None:
    call = read_invocation(command, args)
    assert (call.subcommand, call.slugs, call.project, call.dataset) == expected
    assert not call.in_shell


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["sh", "-c", "jetstream run --experiment_slug=abc --date=x"],
            Invocation("run", ("abc",), None, None, True),
        ),
        (
            ["sh", "-c", "cd /app && jetstream --log_to_bigquery rerun --experiment-slug 'abc'"],
            Invocation("rerun", ("abc",), None, None, True),
        ),
        (
            ["sh", "-c", "unbalanced 'quote --experiment_slug=abc"],
            Invocation(None, ("abc",), None, None, True),
        ),
    ],
)
def test_shell_strings_are_read_and_marked(argv: list[str], expected: Invocation) -> None:
    call = read_invocation(argv, None)
    assert dataclasses.replace(call, flags=frozenset()) == expected


def test_every_option_name_is_known() -> None:
    call = read_invocation(
        ["jetstream", "run", "--date=x", "--no-discrete-metrics", "-v", "y"], None
    )
    assert call.flags == {"--date", "--no-discrete-metrics"}


def test_command_and_args_are_one_line() -> None:
    call = read_invocation([*EMISSARY, "jetstream"], ["run", "--experiment_slug=abc"])
    assert (call.subcommand, call.slugs) == ("run", ("abc",))
