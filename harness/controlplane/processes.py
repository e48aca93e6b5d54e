"""Starting and stopping the control plane's programs as plain processes.

Each runs in its own session with its output in a log file, so `scripts/cluster
up` can leave them running after it exits and `down` (another process) can stop
them later from their recorded pids. A pid is only signalled while its command
line still names the binary that was started, so a recycled pid is never hit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Running:
    """One started program: what `down` needs to stop it and a reader needs to debug it.

    `process` is set in the process that started it (the exit status is known);
    one loaded from the state file checks /proc instead.
    """

    name: str
    pid: int
    program: str
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, compare=False, repr=False)

    def record(self) -> dict[str, str | int]:
        return {"name": self.name, "pid": self.pid, "program": self.program, "log": str(self.log)}

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return False
        zombie = stat.rsplit(")", 1)[-1].split()[0] == "Z"
        return not zombie and self.program.encode() in cmdline

    def exit_status(self) -> str:
        code = self.process.poll() if self.process is not None else None
        return f"exit status {code}" if code is not None else "exited"

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return f"({self.log} unreadable)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to its process group, SIGKILL after `grace` seconds."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            if not self.alive():
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            deadline = time.monotonic() + wait
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.05)


def start(
    name: str,
    command: Sequence[str | os.PathLike[str]],
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    wrapper: Sequence[str] = (),
) -> Running:
    """Start `command` in its own session; `wrapper` (say `nsenter --net=... --`) execs it,
    so the recorded pid and program are the command's own."""
    arguments = [str(part) for part in command]
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*wrapper, *arguments], stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, env=env, cwd=cwd,
        )  # fmt: skip
    return Running(name, process.pid, arguments[0], log, process)


def wait_until(running: Running, ready: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `ready` until it holds; a program that exits or never gets there is an error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not running.alive():
            raise RuntimeError(
                f"{running.name}: {running.exit_status()} before {what}; its log:\n{running.tail()}"
            )
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{running.name}: not {what} after {timeout:.0f} s:\n{running.tail()}")
