"""Config-repo history from a local git mirror: exact first-parent answers, no API quota.

The mirror is a bare repository holding only the configured branch, created
on first use (or by the background thread `start()` launches in each server
worker) and fetched again once it is older than the fetch interval. A lookup
is one local `git rev-list --first-parent`, so it never waits on the network
once the mirror exists, and a failed fetch keeps serving the last good
history. Mirrors are shared by the workers of a pod: a file lock lets one
fetch at a time, and a stamp file records when the last fetch succeeded.

git runs with a clean environment (no user or system config, no prompts),
in its own process group so a timeout kills helpers too; URLs are redacted
before they reach a name, an error or a log line.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from webhook.core.pinning import is_commit_sha
from webhook.sources import SourceError

log = logging.getLogger(__name__)

STAMP = "jetstream-pin-fetched"
MIRRORS_FOLDER = "jetstream-pin-mirrors"


def default_parent() -> Path:
    """Where mirrors go without `mirrorDir`: the temporary folder, looked up only when a
    `git` source is built (importing this module must work on a read-only root
    filesystem with no /tmp, as in the chart's certificate Jobs)."""
    return Path(tempfile.gettempdir()) / MIRRORS_FOLDER


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]*@")
_PASSED_ENV = (
    "PATH", "HOME", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "http_proxy", "https_proxy", "no_proxy", "all_proxy",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
)  # fmt: skip


_BOILERPLATE = {
    "fatal: Could not read from remote repository.",
    "Please make sure you have the correct access rights",
    "and the repository exists.",
}


class GitFailed(Exception):
    """git exited non-zero; the message is what it said, already redacted."""


class GitConfigHistory:
    def __init__(
        self,
        url: str,
        branch: str = "main",
        mirror_dir: Path | None = None,
        fetch_from: str | None = None,
        fetch_interval: float = 60.0,
        fetch_timeout: float = 120.0,
        timeout: float = 5.0,
        git: str = "git",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = f"git {redact(url)}@{branch}"
        self.fetch_url = fetch_from or url
        self.branch = branch
        self.path = (mirror_dir or default_parent()) / mirror_name(self.fetch_url, branch)
        self.fetch_interval = fetch_interval
        self.fetch_timeout = fetch_timeout
        self.timeout = timeout
        self.git = git
        self.clock = clock
        self._secrets = url_secrets(self.fetch_url)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None

    # Lookups

    def sha_at(self, when: datetime | None) -> str:
        deadline = time.monotonic() + self.timeout  # the whole lookup, once the mirror exists
        self._ensure_mirror(deadline)
        ref = f"refs/heads/{self.branch}"
        if when is None:
            return self._sha(["rev-list", "-1", ref, "--"], deadline, required=True)
        seconds = int(when.timestamp() // 1)  # commit times are whole seconds
        if seconds >= 0:
            at = f"--min-age={seconds}"  # what --before=T means: committed at or before T
            found = self._sha(["rev-list", "-1", "--first-parent", at, ref, "--"], deadline)
            if found:
                return found
        # No commit that old: the first commit of the branch's first-parent chain.
        first = ["rev-list", "--first-parent", "--max-parents=0", ref, "--"]
        return self._sha(first, deadline, required=True)

    def _sha(self, args: Sequence[str], deadline: float, required: bool = False) -> str:
        try:
            output = self._git(args, _left(deadline), cwd=self.path)
        except GitFailed as err:
            raise SourceError(self.name, f"git {args[0]} failed: {err}") from None
        lines = output.split()
        if not lines:
            if required:
                raise SourceError(self.name, f"branch {self.branch} has no commits")
            return ""
        sha = lines[-1]
        if not is_commit_sha(sha):
            raise SourceError(self.name, f"git {args[0]} printed something that is not a SHA")
        return sha

    def _ensure_mirror(self, deadline: float) -> None:
        if self._thread is not None:  # the background thread clones and fetches
            if not self._ready.wait(_left(deadline)):
                raise SourceError(self.name, self._not_ready())
            return
        if self._ready.is_set() and not self._stale():
            return
        try:
            self.refresh()  # without a background thread, the lookup clones or fetches
        except SourceError as err:
            if not (self.path / STAMP).exists():
                raise
            self._fetch_failed(err.cause)
            self._ready.set()

    def _not_ready(self) -> str:
        if self._last_error:
            return f"no mirror yet: {self._last_error} (retrying every {self._retry():g}s)"
        return f"the mirror is still being cloned (waited {self.timeout:g}s)"

    # Keeping the mirror

    def refresh(self) -> None:
        """Clone the mirror when missing, else fetch when older than the interval."""
        with self._lock, self._file_lock():
            try:
                if not (self.path / STAMP).exists():
                    self._clone()
                    log.info(
                        "git mirror created",
                        extra={"fields": {"source": self.name, "mirror": str(self.path)}},
                    )
                elif self._stale():
                    self._fetch(self.path)
            except OSError as err:
                raise SourceError(
                    self.name, f"cannot write the mirror in {self.path.parent}: {err.strerror}"
                ) from None
            self._ready.set()

    def _clone(self) -> None:
        tmp = Path(tempfile.mkdtemp(prefix=f"{self.path.name}.", dir=self.path.parent))
        try:
            try:
                self._git(
                    ["init", "--bare", "--quiet", str(tmp)],
                    self.timeout,
                    settings=[f"init.defaultBranch={self.branch}"],
                )
            except GitFailed as err:
                raise SourceError(self.name, f"cannot create the mirror: {err}") from None
            self._fetch(tmp, first=True)
            if self.path.exists():  # a leftover without a stamp: never completed
                shutil.rmtree(self.path)
            os.rename(tmp, self.path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _fetch(self, repo: Path, first: bool = False) -> None:
        refspec = f"+refs/heads/{self.branch}:refs/heads/{self.branch}"
        args = ["fetch", "--no-tags", "--quiet", "--no-write-fetch-head", self.fetch_url, refspec]
        try:
            self._git(args, self.fetch_timeout, cwd=repo)
        except GitFailed as err:
            cause = str(err)
            if "couldn't find remote ref" in cause:
                cause = f"branch {self.branch} does not exist in {redact(self.fetch_url)}"
            elif first:
                cause = f"cannot clone {redact(self.fetch_url)}: {cause}"
            else:
                cause = f"cannot fetch {redact(self.fetch_url)}: {cause}"
            raise SourceError(self.name, cause) from None
        now = self.clock()
        (repo / STAMP).touch()
        os.utime(repo / STAMP, (now, now))

    def _stale(self) -> bool:
        return self._age() >= self.fetch_interval

    def _age(self) -> float:
        try:
            return self.clock() - (self.path / STAMP).stat().st_mtime
        except OSError:
            return float("inf")

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """One fetch at a time across the worker processes sharing this mirror."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle = open(self.path.with_name(self.path.name + ".lock"), "a")  # noqa: SIM115
        except OSError as err:
            raise SourceError(
                self.name, f"cannot use mirror directory {self.path.parent}: {err.strerror}"
            ) from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _fetch_failed(self, cause: str) -> None:
        log.warning(
            "git fetch failed; serving from the existing mirror",
            extra={"fields": {"source": self.name, "cause": cause}},
        )

    # The background thread (one per server worker)

    def start(self) -> None:
        """Clone now and fetch every interval in a thread; lookups then never touch the network."""
        if self._thread is not None:
            return
        if (self.path / STAMP).exists():
            self._ready.set()
        self._thread = threading.Thread(
            target=self._run, name=f"git mirror {self.path.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
                self._last_error = None
            except SourceError as err:
                self._last_error = err.cause
                if self._ready.is_set():
                    self._fetch_failed(err.cause)
                else:
                    log.error(
                        "git mirror cannot be created",
                        extra={"fields": {"source": self.name, "cause": err.cause}},
                    )
            except Exception:
                log.exception("git mirror refresh failed", extra={"fields": {"source": self.name}})
            self._stop.wait(self._next_wait())

    def _next_wait(self) -> float:
        if not self._ready.is_set() or self._last_error:
            return self._retry()
        return max(self.fetch_interval - self._age(), min(1.0, self.fetch_interval))

    def _retry(self) -> float:
        return min(self.fetch_interval, 10.0)

    # Running git

    def _git(
        self,
        args: Sequence[str],
        timeout: float,
        cwd: Path | None = None,
        settings: Sequence[str] = (),
    ) -> str:
        """Run `git ARGS`; settings are `-c name=value` pairs for this run only."""
        options = ["gc.autoDetach=false", "credential.helper=", *settings]
        command = [self.git, *(part for option in options for part in ("-c", option)), *args]
        try:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env=git_environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # a timeout kills git and its helpers together
            )
        except FileNotFoundError:
            raise SourceError(
                self.name, f"the git program ({self.git}) is not installed (apt-get install git)"
            ) from None
        except OSError as err:
            raise SourceError(self.name, f"cannot run git: {err.strerror}") from None
        try:
            out, errors = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise SourceError(self.name, f"git {args[0]} timed out after {timeout:g}s") from None
        if process.returncode != 0:
            raise GitFailed(self._last_error_line(errors.decode(errors="replace")))
        return out.decode(errors="replace")

    def _last_error_line(self, stderr: str) -> str:
        """git's own explanation, without its boilerplate advice and without secrets."""
        lines = [line.strip() for line in stderr.splitlines()]
        useful = [
            line.removeprefix("fatal: ").removeprefix("error: ")
            for line in lines
            if line and not line.startswith("hint:") and line not in _BOILERPLATE
        ]
        text = "; ".join(useful) or "no error message"
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return redact(text)[:300]


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.05)


def git_environment() -> dict[str, str]:
    """Only what git needs to reach the network; never the user's or the system's config."""
    env = {name: value for name in _PASSED_ENV if (value := os.environ.get(name)) is not None}
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_SSH_COMMAND="ssh -o BatchMode=yes",
        LC_ALL="C",
    )
    return env


def redact(text: str) -> str:
    """Replace the user-info of every URL in `text` (`https://***@host/...`)."""
    return _USERINFO.sub(r"\1***@", text)


def url_secrets(url: str) -> list[str]:
    """The credential parts of a URL, raw and decoded, to scrub from git's messages."""
    userinfo = urlsplit(url).netloc.rpartition("@")[0] if "://" in url else ""
    parts = {userinfo, *userinfo.split(":", 1)} if userinfo else set()
    secrets = {p for part in parts for p in (part, unquote(part)) if len(p) >= 3}
    return sorted(secrets, key=len, reverse=True)


def mirror_name(url: str, branch: str) -> str:
    """A directory name per (url, branch): readable, and unique through a hash."""
    safe_url = redact(url)
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", safe_url.rstrip("/").rsplit("/", 1)[-1])
    stem = stem.removesuffix(".git")[:40] or "repo"
    digest = hashlib.sha256(f"{safe_url}\0{branch}".encode()).hexdigest()[:12]
    return f"{stem}-{digest}.git"
