"""Real git repositories built by tests, with commits at chosen dates."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def require_git() -> str:
    git = shutil.which("git")
    if git is None:
        pytest.fail("these tests need the git program: apt-get install git (scripts/test does)")
    return git


class Upstream:
    """A normal repository on disk whose commits get the dates a test chooses."""

    def __init__(self, path: Path, branch: str = "main") -> None:
        require_git()
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", f"--initial-branch={branch}")

    def git(self, *args: str, when: str | None = None) -> str:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.path),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "Test",
            "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.com",
        }
        if when is not None:
            env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when
        result = subprocess.run(
            ["git", *args], cwd=self.path, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
        return result.stdout.strip()

    def commit(self, message: str, when: str) -> str:
        """A commit changing one file, committed (and authored) at `when` (RFC 3339)."""
        (self.path / "config.toml").write_text(f"# {message}\n")
        self.git("add", "config.toml")
        self.git("commit", "--quiet", "-m", message, when=when)
        return self.head()

    def checkout(self, branch: str, new: bool = False) -> None:
        self.git("checkout", "--quiet", *(["-b"] if new else []), branch)

    def merge(self, branch: str, when: str) -> str:
        """A merge commit (never a fast-forward) of `branch` into the current branch."""
        message = f"merge {branch}"
        self.git("merge", "--quiet", "--no-ff", "-X", "theirs", "-m", message, branch, when=when)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")
