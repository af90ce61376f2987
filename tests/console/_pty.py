"""A console client in a real pseudo-terminal (pexpect): ``aiopod shell`` or ``aiopod attach``.

One driver for the shell, attach and front-end tests, and the ticker bean they watch the
pod's loop with.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pexpect

PROMPT = ">>>"
#: prompt_toolkit turns bracketed paste off when a line is accepted.
ACCEPTED = "\x1b[?2004l"

#: A bean that writes a line every 10 ms while the pod's loop runs.
TICKER = """
import asyncio

async def ticker(path, **kw):
    n = 0
    while True:
        n += 1
        with open(path, "a") as f:
            f.write(f"{n}\\n")
        await asyncio.sleep(0.01)
"""


def ticks(path: Path) -> int:
    """How many times the ticker bean writing ``path`` has ticked."""
    return len(path.read_text().split()) if path.exists() else 0


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)  # polling with a deadline


def wait_ticking(path: Path, more: int = 10, timeout: float = 15.0) -> None:
    """The ticker bean advances by ``more`` ticks (the pod's loop runs)."""
    start = ticks(path)
    wait_until(lambda: ticks(path) >= start + more, timeout, f"{more} more ticks in {path}")


def shell_argv(*args: str) -> list[str]:
    """``aiopod shell ARGS`` as the console tests start it."""
    return [sys.executable, "-m", "aiopod", "shell", "--no-history", "--stop-wait-time", "1", *args]


def spawn(
    argv: Sequence[str], cwd: Path, env: dict[str, str], timeout: float = 20, dimensions: tuple[int, int] = (50, 160)
) -> pexpect.spawn:
    """``argv`` in a new pseudo-terminal of ``dimensions`` (rows, columns), read as text."""
    return pexpect.spawn(
        argv[0], list(argv[1:]), cwd=str(cwd), env=env, encoding="utf-8", timeout=timeout, dimensions=dimensions
    )


class Console:
    """A console session in a pseudo-terminal, driven line by line."""

    def __init__(self, argv: Sequence[str], cwd: Path, env: dict[str, str], timeout: float = 20) -> None:
        self.child = spawn(argv, cwd, env, timeout)

    def prompt(self) -> None:
        self.child.expect_exact(PROMPT)

    def run(self, line: str, expect: str | None = None) -> str:
        """Type ``line``, wait for ``expect`` (if given) and the next prompt; return the output."""
        self.child.sendline(line)
        # The prompt is redrawn with every key typed, so ">>>" alone could match the echo:
        # first wait for the input to be accepted.
        self.child.expect_exact(ACCEPTED)
        before = ""
        if expect is not None:
            self.child.expect_exact(expect)
            before = (self.child.before or "") + expect
        self.prompt()
        return before + (self.child.before or "")

    def exit_status(self, timeout: float | None = None) -> int:
        self.child.expect(pexpect.EOF, timeout=self.child.timeout if timeout is None else timeout)
        self.child.close()
        assert self.child.exitstatus is not None, f"killed by signal {self.child.signalstatus}"
        return self.child.exitstatus

    @property
    def seen(self) -> str:
        """Everything read so far (with pexpect's buffer)."""
        return (self.child.before or "") + (self.child.buffer or "")

    def close(self) -> None:
        if self.child.isalive():
            self.child.kill(signal.SIGKILL)
            self.child.close(force=True)


def shell_environment() -> dict[str, str]:
    """What ``aiopod shell`` runs with in these tests: no cursor position requests, a plain xterm."""
    return {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm", "PYTHONUNBUFFERED": "1"}
