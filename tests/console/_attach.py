"""Real pods and real ``aiopod attach`` clients for the attach tests (pexpect, unix sockets)."""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path
from typing import Any

from aiopod.console import protocol
from tests.console._pty import TICKER, Console, wait_until

BEANS = (
    TICKER
    + """
import time

async def ready(**kw):
    print("ready", flush=True)
    while True:
        await asyncio.sleep(3600)

async def ready_then_end(**kw):
    print("ready", flush=True)

async def say(**kw):
    await asyncio.sleep(0.2)
    print("bean-" + "says", flush=True)

async def idle(**kw):
    while True:
        await asyncio.sleep(3600)
"""
)


class Pod:
    """``aiopod run`` in a subprocess; its output collected by a thread."""

    def __init__(self, cwd: Path, env: dict[str, str], *args: str) -> None:
        self.folder = Path(env["XDG_RUNTIME_DIR"]) / "aiopod"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aiopod", "run", "--stop-wait-time", "1", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def seen() -> bool:
            match = re.search(pattern, self.output)
            if match:
                found.append(match)
            return bool(match) or self.proc.poll() is not None

        wait_until(seen, timeout, f"{pattern!r} in the pod's output")
        if not found:
            raise AssertionError(f"the pod exited ({self.proc.returncode}) before {pattern!r}:\n{self.output}")
        return found[0]

    def socket(self, path: Path | None = None) -> Path:
        """The console socket (``path``, else the default one), once the pod serves it."""
        path = self.folder / f"{self.pid}.sock" if path is None else path

        def served() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"the pod exited ({self.proc.returncode}):\n{self.output}")
            try:
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                with probe:
                    probe.connect(str(path))
            except OSError:
                return False
            return True

        wait_until(served, 20, f"the pod to serve {path}")
        return path

    def wait(self, timeout: float = 20.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Attach(Console):
    """``aiopod attach`` in a pseudo-terminal."""

    def __init__(self, cwd: Path, env: dict[str, str], *args: str, command: list[str] | None = None) -> None:
        super().__init__(command or [sys.executable, "-m", "aiopod", "attach", "--no-history", *args], cwd, env)

    def wait_raw(self, timeout: float = 10.0) -> None:
        """Until the client has put its terminal in raw mode (no line editing, no echo by the tty)."""

        def raw() -> bool:
            lflag = termios.tcgetattr(self.child.child_fd)[3]  # the master reads the pty's settings
            return not lflag & (termios.ICANON | termios.ECHO)

        wait_until(raw, timeout, "the terminal in raw mode")


class RawClient:
    """A console-socket client that speaks the protocol by hand (or not at all)."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(path))
        self._buffer = b""

    def send(self, message: dict[str, Any]) -> None:
        self.sock.sendall(protocol.encode(message))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self) -> dict[str, Any] | None:
        """The next frame, or None when the pod closed the connection."""
        while len(self._buffer) < 4 or len(self._buffer) < 4 + struct.unpack("!I", self._buffer[:4])[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
        (size,) = struct.unpack("!I", self._buffer[:4])
        body, self._buffer = self._buffer[4 : 4 + size], self._buffer[4 + size :]
        return protocol.decode(body)

    def read_until(self, kind: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Frames up to the first of type ``kind`` (which is returned with what came before)."""
        seen = []
        while True:
            message = self.read()
            if message is None:
                raise AssertionError(f"the pod closed the connection before a {kind!r} frame; got {seen}")
            if message["type"] == kind:
                return message, seen
            seen.append(message)

    def session(self) -> dict[str, Any]:
        self.send(protocol.hello("session"))
        welcome = self.read()
        assert welcome is not None and welcome["type"] == "welcome", welcome
        return welcome

    def run(self, code: str, number: int = 1) -> tuple[dict[str, Any], str]:
        """Run ``code``; its ``done`` frame and the output that came before it."""
        self.send({"type": "run", "id": number, "code": code})
        done, before = self.read_until("done")
        return done, "".join(m.get("data", "") for m in before if m["type"] == "output")

    def close(self) -> None:
        self.sock.close()


def environment(tmp_path: Path) -> dict[str, str]:
    """An environment whose socket folder ($XDG_RUNTIME_DIR/aiopod) belongs to this test alone."""
    runtime = tmp_path / "run"
    runtime.mkdir(exist_ok=True)
    runtime.chmod(0o700)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    return {
        **os.environ,
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_STATE_HOME": str(state),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "TERM": "xterm",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]),
    }


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")
