"""The Dockerfile's structure (no Docker engine runs here, so it is read, not built)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

import pytest

from harness.builders import ROOT

COMPILERS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|cc|python3?-dev|libc6?-dev)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for word, args in self.instructions if word == keyword]


def read_stages() -> tuple[dict[str, str], list[Stage]]:
    text = (ROOT / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", text)
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name))
        elif stages:
            stages[-1].instructions.append((word, rest.strip()))
        elif word == "ARG":
            key, _, value = rest.partition("=")
            args[key] = value
    return args, stages


def test_multi_stage_with_wheels_built_first() -> None:
    args, stages = read_stages()
    assert len(stages) == 2
    build, final = stages
    assert build.name == "wheels"
    # pinned by digest: a rebuild gets the same base, whatever the tag points to meanwhile
    assert re.fullmatch(
        r"python:3\.11[.0-9]*-slim-bookworm@sha256:[0-9a-f]{64}", args["PYTHON_IMAGE"]
    )
    assert build.base == final.base == "${PYTHON_IMAGE}"
    assert any(
        "pip wheel" in run and "--constraint constraints.txt" in run for run in build.all("RUN")
    )
    [install] = [run for run in final.all("RUN") if "pip install" in run]
    assert "--mount=type=bind,from=wheels" in install
    assert "--no-index" in install  # nothing is fetched or compiled in the final stage


def apt_packages(run: str) -> list[str]:
    """The packages an `apt-get install` in `run` names (options left out)."""
    found = []
    for command in run.split("&&"):
        words = shlex.split(command)
        if words[:2] == ["apt-get", "install"]:
            found += [w for w in words[2:] if not w.startswith("-")]
    return found


def test_final_stage_has_no_compilers() -> None:
    _, (_, final) = read_stages()
    for run in final.all("RUN"):
        assert not COMPILERS.search(run), run
    assert not final.all("COPY"), "the final stage only installs the wheels"


def test_final_image_has_git_and_no_pip_or_setuptools() -> None:
    """The `git` config-repo source runs git; pip and setuptools are not needed to run."""
    _, (_, final) = read_stages()
    [run] = [run for run in final.all("RUN") if "pip install" in run]
    assert apt_packages(run) == ["git"]
    assert "--no-install-recommends" in run
    steps = [step.strip() for step in run.split("&&")]
    uninstall = steps.index("python -m pip uninstall --yes pip setuptools wheel")
    assert uninstall > next(i for i, step in enumerate(steps) if "pip install" in step)
    assert "rm -rf /usr/local/lib/python3.11/ensurepip" in steps  # its bundled pip wheels
    assert "rm -rf /var/lib/apt/lists/*" in steps
    assert not any(step.startswith(("pip ", "python -m pip")) for step in steps[uninstall + 1 :])


def test_oci_labels() -> None:
    _, (_, final) = read_stages()
    [labels] = final.all("LABEL")
    keys = {pair.split("=", 1)[0] for pair in shlex.split(labels)}
    assert {
        f"org.opencontainers.image.{name}"
        for name in ("title", "description", "source", "licenses", "version", "revision")
    } <= keys


def test_runs_as_a_numeric_non_root_user() -> None:
    _, (_, final) = read_stages()
    [user] = final.all("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit()
    assert int(uid) > 0
    assert gid == "" or int(gid) > 0
    words = [word for word, _ in final.instructions]
    assert words.index("USER") > max(
        i for i, w in enumerate(words) if w == "RUN"
    )  # nothing after as root


def test_entrypoint_and_no_healthcheck() -> None:
    _, stages = read_stages()
    _, final = stages
    [entrypoint] = final.all("ENTRYPOINT")
    assert json.loads(entrypoint) == ["jetstream-pin", "serve"]  # exec form: signals reach gunicorn
    assert all(not stage.all("HEALTHCHECK") for stage in stages)
    assert not final.all("CMD")
    assert set(shlex.split(final.all("EXPOSE")[0])) == {"10250", "8444"}  # the chart's ports


@pytest.mark.parametrize("path", [".venv", ".tools", "certs", "tests", ".git"])
def test_dockerignore_keeps_local_state_out(path: str) -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert path in ignored
