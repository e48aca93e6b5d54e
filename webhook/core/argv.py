"""Reading Jetstream's command line out of a container's `command` + `args`.

Jetstream is a click program: `jetstream [GROUP OPTIONS] SUBCOMMAND [OPTIONS]`.
The webhook needs four things from that line: which subcommand runs (only the
analysis steps are pinned; orchestration commands choose tooling
themselves), every `--experiment_slug` (the flag is repeatable), and the
`--project_id` / `--dataset_id` whose enrollments table Jetstream will read.

The line reaches a pod in several wrappings, all handled here: directly
(`command: [jetstream, run, ...]`), as `args` after the image's entrypoint
(Jetstream's image has `ENTRYPOINT ["jetstream"]`), behind Argo's emissary
(`argoexec emissary -- jetstream ...`), and inside a shell string
(`sh -c "jetstream run ..."`). Pure: no I/O, linear in the line's length.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

PROGRAM = "jetstream"
_SPACE = re.compile(r"\s")
_SLUG_FLAGS = ("--experiment_slug", "--experiment-slug")
_PROJECT_FLAGS = ("--project_id", "--project-id")
_DATASET_FLAGS = ("--dataset_id", "--dataset-id")
# Options of Jetstream's command group (before the subcommand) that take a value
# as the next word; every other option word there is a flag (--log_to_bigquery,
# --debug). The chart's admission policy reads the line by the same rule.
_GROUP_OPTIONS_WITH_VALUE = frozenset(
    {
        "--log_project_id",
        "--log-project-id",
        "--log_dataset_id",
        "--log-dataset-id",
        "--log_table_id",
        "--log-table-id",
        "--task_profiling_log_table_id",
        "--task-profiling-log-table-id",
        "--task_monitoring_log_table_id",
        "--task-monitoring-log-table-id",
        "--log_source",
        "--log-source",
    }
)


@dataclass(frozen=True)
class Invocation:
    """What one container's command line asks Jetstream to do.

    `subcommand` None: no Jetstream command line was recognised (the flags may
    still be there). `in_shell`: the line was read out of a shell string, so
    arguments cannot be appended to it safely.
    """

    subcommand: str | None
    slugs: tuple[str, ...]
    project: str | None
    dataset: str | None
    in_shell: bool
    flags: frozenset[str] = frozenset()  # every option name on the line (`--x` of `--x=y`)


def shell_words(argv: Sequence[str]) -> tuple[list[str], bool]:
    """The words of `argv`, splitting arguments that hold a shell command line.

    `sh -c "jetstream run --experiment_slug=x"` hides the flags inside one
    argument. Returns the words and whether any argument had to be split.
    """
    words: list[str] = []
    split = False
    for arg in argv:
        if _SPACE.search(arg):
            split = True
            try:
                words.extend(shlex.split(arg))
            except ValueError:  # an unbalanced quote: still find the flags
                words.extend(arg.split())
        else:
            words.append(arg)
    return words, split


def _is_program(word: str) -> bool:
    return word.rpartition("/")[2] == PROGRAM


def _subcommand(words: Sequence[str], start: int) -> str | None:
    """The first word after the group's options, from `start` (just after `jetstream`)."""
    position = start
    while position < len(words):
        word = words[position]
        if word == "--":
            position += 1
            continue
        if not word.startswith("-"):
            return word
        takes_value = "=" not in word and word in _GROUP_OPTIONS_WITH_VALUE
        position += 2 if takes_value else 1
    return None


def _flag_values(words: Sequence[str], names: tuple[str, ...]) -> list[str]:
    """Every value given to one of `names`, as `--flag=value` or `--flag value`."""
    found: list[str] = []
    for position, word in enumerate(words):
        if not word.startswith(names):
            continue
        name, equals, value = word.partition("=")
        if name not in names:
            continue
        if equals:
            found.append(value)
        elif position + 1 < len(words):
            found.append(words[position + 1])
    return found


def read_invocation(command: Sequence[str] | None, args: Sequence[str] | None) -> Invocation:
    """Read a container's Jetstream command line (`command` None: the image's entrypoint).

    A container without `command` runs Jetstream's entrypoint with `args`.
    Otherwise the line starts at the first word naming the `jetstream`
    program (any directory). The flags are read from the whole line, so a
    slug is found however the program is wrapped.
    """
    argv = [*(command or []), *(args or [])]
    words, in_shell = shell_words(argv)
    subcommand: str | None = None
    if command is None:
        subcommand = _subcommand(words, 0)
    else:
        for position, word in enumerate(words):
            if _is_program(word):
                subcommand = _subcommand(words, position + 1)
                break
    projects = _flag_values(words, _PROJECT_FLAGS)
    datasets = _flag_values(words, _DATASET_FLAGS)
    return Invocation(
        subcommand=subcommand,
        slugs=tuple(_flag_values(words, _SLUG_FLAGS)),
        project=projects[-1] if projects else None,  # click keeps the last one given
        dataset=datasets[-1] if datasets else None,
        in_shell=in_shell,
        flags=frozenset(w.partition("=")[0] for w in words if w.startswith("--")),
    )
