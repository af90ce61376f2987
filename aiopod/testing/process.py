"""Pods as real subprocesses: start ``aiopod run``, wait on its output, send signals."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast


class Proc:
    """A child process whose merged stdout/stderr is collected by a reader thread."""

    def __init__(
        self,
        args: Sequence[str],
        cwd: str | Path,
        env: dict[str, str] | None = None,
        stdin: int | None = subprocess.DEVNULL,
    ) -> None:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.started = time.monotonic()
        self.popen = subprocess.Popen(
            list(args),
            cwd=cwd,
            env=full_env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._chunks: list[bytes] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        stdout = cast(io.BufferedReader, self.popen.stdout)
        for chunk in iter(lambda: stdout.read1(65536), b""):
            with self._cond:
                self._chunks.append(chunk)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return b"".join(self._chunks).decode(errors="replace")

    def wait_for(self, text: str, timeout: float = 10.0) -> str:
        """Wait until ``text`` has been printed; fail with the output so far if it is not."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                out = b"".join(self._chunks).decode(errors="replace")
                if text in out:
                    return out
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.popen.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"{text!r} did not appear within {timeout} s; output:\n{out}")
                self._cond.wait(min(remaining, 0.1))

    def signal(self, sig: int = signal.SIGTERM) -> float:
        """Send ``sig``; return the monotonic time it was sent."""
        self.popen.send_signal(sig)
        return time.monotonic()

    def wait(self, timeout: float = 20.0) -> int:
        """Wait for the exit status; kill and fail if the process hangs."""
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"process did not exit within {timeout} s; output:\n{self.output}") from None
        self._close()
        return code

    def kill(self) -> None:
        """Kill the process if it is still running (for teardown)."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        self._close()

    def _close(self) -> None:
        self._reader.join(5)
        if self.popen.stdout is not None and not self._reader.is_alive():
            self.popen.stdout.close()

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def aiopod(
    *args: str, cwd: str | Path, env: dict[str, str] | None = None, stdin: int | None = subprocess.DEVNULL
) -> Proc:
    """Start ``python -m aiopod ARGS`` in ``cwd``."""
    return Proc([sys.executable, "-m", "aiopod", *args], cwd=cwd, env=env, stdin=stdin)


def run(*args: str, cwd: str | Path, env: dict[str, str] | None = None, timeout: float = 30.0) -> tuple[int, str]:
    """Run ``aiopod ARGS`` to completion: ``(exit status, output)``."""
    proc = aiopod(*args, cwd=cwd, env=env)
    code = proc.wait(timeout)
    return code, proc.output
