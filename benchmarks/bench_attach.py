"""Rows 12-14: what attaching costs a headless pod.

A headless ``aiopod run`` pod with a 5 ms heartbeat bean serves its console socket:

- row 12: a person types into ``aiopod attach`` (a real pseudo-terminal, the typing script
  of the console row: statements, a block, Tab completions of ``pod.`` and ``asyncio.``)
  at 15 keys/s for 20 s; the heartbeat's max and p99 lateness over that window;
- row 13: 50 sessions attached and idle (each has run a statement, as a person would
  have); the max lateness over 3 s, and the pod's RSS per session;
- row 14: 100 sessions opened and closed one after the other (hello, one statement,
  bye); the worst lateness during the churn (the loop stall an open costs), and the
  pod's RSS after 100 sessions compared with before.

Rows 13 and 14 speak the socket's protocol directly: what the pod does for a session
does not depend on what the client draws (the client's rendering is not in the pod).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any

import pexpect

from aiopod.console import protocol

from ._harness import PYTHON, BenchmarkError, Row, Settings, bare_heartbeat, clean_env, mebibytes, p99, seconds
from .bench_console import HEARTBEAT, INTERVAL, PROMPT

TYPING_SECONDS = 20.0
KEYS_PER_SECOND = 15.0
TYPING_SETTLE = 1.0
TYPING_MAX_GOAL = 0.020
TYPING_P99_GOAL = 0.005
IDLE_SESSIONS = 50
IDLE_WINDOW = 3.0
IDLE_GOAL = 0.005
CHURN_SESSIONS = 100
#: The console row's typing script (issue 11): what the person types, over and over.
TYPING_SCRIPT = (
    "import json\r",
    "n = len(pod.beans) + 1\r",
    "pod.\t\t\x15",
    "x = [i * i for i in range(10)]\r",
    "asyncio.\t\t\t\x15",
    "pod.be\t\r",
    "def f(a, b):\rreturn a + b\r\r",
    "f(2, 3) + sum(x)\r",
    "await asyncio.sl\t(0.01)\r",
    "asyncio.ga\t\x15",
    "text = json.dumps({'n': n, 'x': x})\r",
)


@contextmanager
def _pod(quick: bool) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path, dict[str, str]]]:
    """A headless pod with the heartbeat; yields it, its beats file, its socket and the environment."""
    with tempfile.TemporaryDirectory(prefix="aiopod-bench-") as tmp:
        home = Path(tmp)
        (home / "beans.py").write_text(HEARTBEAT)
        run = home / "run"
        run.mkdir(mode=0o700)
        env = clean_env(HOME=str(home), TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", XDG_RUNTIME_DIR=str(run))
        for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
            env.pop(name, None)
        beats = home / "beats.json"
        proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "aiopod",
                "run",
                "--stop-wait-time",
                "2",
                f"beans.heartbeat:path={beats},interval={INTERVAL}",
            ],
            cwd=home,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        path = run / "aiopod" / f"{proc.pid}.sock"
        try:
            _wait_served(path, proc)
            yield proc, beats, path, env
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_served(path: Path, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise BenchmarkError(f"the pod exited with {proc.returncode} before serving {path}")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.connect(str(path))
            return
        except OSError:
            if time.monotonic() > deadline:
                raise BenchmarkError(f"the pod did not serve {path} within {timeout:g} s") from None
            time.sleep(0.05)


def _lateness(proc: subprocess.Popen[bytes], beats: Path, start: float, end: float) -> list[tuple[float, float]]:
    """Stop the pod; the heartbeat's beats within [start, end]: (when, lateness: gap minus interval)."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(20)
    found = [(when, gap - INTERVAL) for when, gap in json.loads(beats.read_text()) if start <= when <= end]
    if len(found) < (end - start) / INTERVAL / 4:
        raise BenchmarkError(f"only {len(found)} heartbeats in {end - start:.1f} s")
    return found


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) the process has used: the pod's own work, whatever the host's load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchmarkError(f"no VmRSS for pid {pid}")


class _Session:
    """One console-socket session, spoken by hand."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(str(path))
        self.buffer = b""
        self.sock.sendall(protocol.encode(protocol.hello("session")))
        if self.read()["type"] != "welcome":
            raise BenchmarkError("the pod did not welcome the session")

    def read(self) -> dict[str, Any]:
        while len(self.buffer) < 4 or len(self.buffer) < 4 + struct.unpack("!I", self.buffer[:4])[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BenchmarkError("the pod closed a session")
            self.buffer += chunk
        (size,) = struct.unpack("!I", self.buffer[:4])
        body, self.buffer = self.buffer[4 : 4 + size], self.buffer[4 + size :]
        return protocol.decode(body)

    def run(self, code: str) -> None:
        self.sock.sendall(protocol.encode({"type": "run", "id": 1, "code": code}))
        while self.read()["type"] != "done":
            pass

    def close(self) -> None:
        self.sock.sendall(protocol.encode({"type": "bye"}))
        self.sock.close()


def _type(child: pexpect.spawn, duration: float) -> tuple[float, float]:
    """Type TYPING_SCRIPT at KEYS_PER_SECOND for ``duration`` s, reading the screen meanwhile."""
    keys = "".join(TYPING_SCRIPT)
    started = time.monotonic()
    index = 0
    while True:
        due = started + index / KEYS_PER_SECOND
        if due - started >= duration:
            break
        while True:  # read what the client draws until the next key is due
            remaining = due - time.monotonic()
            if remaining <= 0:
                break
            try:
                child.read_nonblocking(65536, timeout=remaining)
            except pexpect.TIMEOUT:
                break
            except pexpect.EOF:
                raise BenchmarkError("aiopod attach exited while typing") from None
        child.send(keys[index % len(keys)])
        index += 1
    return started, time.monotonic()


def run_typing(settings: Settings) -> list[Row]:
    """Row 12: the heartbeat's lateness while a person types into ``aiopod attach``."""
    duration = 5.0 if settings.quick else TYPING_SECONDS
    with _pod(settings.quick) as (proc, beats, path, env):
        child = pexpect.spawn(
            PYTHON,
            ["-m", "aiopod", "attach", "--no-history", str(path)],
            env=env,
            encoding="utf-8",
            timeout=30,
            dimensions=(50, 160),
        )
        try:
            child.expect(PROMPT)
            idle_cpu, idle_from = _cpu(proc.pid), time.monotonic()
            time.sleep(TYPING_SETTLE)  # a person takes a breath; the pod's idle CPU rate meanwhile
            idle_rate = (_cpu(proc.pid) - idle_cpu) / (time.monotonic() - idle_from)
            with bare_heartbeat(INTERVAL) as floor:
                cpu = _cpu(proc.pid)
                start, end = _type(child, duration)
                cpu = _cpu(proc.pid) - cpu
            child.send("\x15\x04")
            child.expect(pexpect.EOF, timeout=20)
        finally:
            child.close(force=True)
        found = _lateness(proc, beats, start, end)
        late = [lateness for _, lateness in found]
        worst_beat = max(found, key=itemgetter(1))
    worst, late_p99 = max(late), p99(late)
    met = worst <= TYPING_MAX_GOAL and late_p99 <= TYPING_P99_GOAL
    detail = (
        f"{KEYS_PER_SECOND:g} keys/s for {duration:g} s into `aiopod attach` (Tab completions of pod. and asyncio.), "
        f"headless pod, {INTERVAL * 1e3:g} ms heartbeat: max {seconds(worst)}, p99 {seconds(late_p99)}, "
        f"median {seconds(statistics.median(late))}, {len(late)} beats; the pod's CPU over the window "
        f"{seconds(cpu)}, idle rate {seconds(idle_rate * (end - start))} (the heartbeat); {floor.text(worst_beat)}"
    )
    goal = f"max <= {TYPING_MAX_GOAL * 1e3:g} ms, p99 <= {TYPING_P99_GOAL * 1e3:g} ms"
    result = f"max {seconds(worst)}, p99 {seconds(late_p99)}"
    return [Row(12, "loop lag while a person types in `aiopod attach`", result, goal, met, detail)]


def run_idle(settings: Settings) -> list[Row]:
    """Row 13: 50 idle sessions attached: the loop's lag, and the pod's RSS per session."""
    count = 10 if settings.quick else IDLE_SESSIONS
    with _pod(settings.quick) as (proc, beats, path, _):
        warm = _Session(path)  # a pod's first session imports the helpers and makes the evaluator: not counted
        warm.run("1")
        warm.close()
        time.sleep(0.5)
        before = _rss_kib(proc.pid)
        sessions = []
        try:
            for _ in range(count):
                session = _Session(path)
                session.run("x = 1")
                sessions.append(session)
            time.sleep(0.5)  # the openings are done: the window is idle
            after = _rss_kib(proc.pid)
            with bare_heartbeat(INTERVAL) as floor:
                start = time.monotonic()
                time.sleep(IDLE_WINDOW)
                end = time.monotonic()
        finally:
            for session in sessions:
                session.close()
        found = _lateness(proc, beats, start, end)
        late = [lateness for _, lateness in found]
        worst_beat = max(found, key=itemgetter(1))
    worst = max(late)
    per = (after - before) / count
    detail = (
        f"{count} sessions, each after one statement, idle for {IDLE_WINDOW:g} s; max lateness of a "
        f"{INTERVAL * 1e3:g} ms heartbeat {seconds(worst)}, p99 {seconds(p99(late))}; pod RSS "
        f"{mebibytes(before)} -> {mebibytes(after)}: {per:.0f} KiB per session; {floor.text(worst_beat)}"
    )
    return [Row(13, f"{count} idle sessions attached: loop lag (RSS per session)",
                f"{seconds(worst)} ({per:.0f} KiB/session)", f"<= {IDLE_GOAL * 1e3:g} ms", worst <= IDLE_GOAL,
                detail)]  # fmt: skip


def run_churn(settings: Settings) -> list[Row]:
    """Row 14: sessions opened and closed one after the other: loop stall per open, RSS per 100."""
    count = 20 if settings.quick else CHURN_SESSIONS
    with _pod(settings.quick) as (proc, beats, path, _):
        warm = _Session(path)  # the evaluator is made at a pod's first statement: not counted
        warm.run("1")
        warm.close()
        time.sleep(0.5)
        before = _rss_kib(proc.pid)
        opened = []
        with bare_heartbeat(INTERVAL) as floor:
            cpu = _cpu(proc.pid)
            start = time.monotonic()
            for _ in range(count):
                began = time.monotonic()
                session = _Session(path)
                session.run("print('hello')")
                session.close()
                opened.append(time.monotonic() - began)
            end = time.monotonic()
            cpu = _cpu(proc.pid) - cpu
        time.sleep(0.5)
        after = _rss_kib(proc.pid)
        found = _lateness(proc, beats, start, end)
        late = [lateness for _, lateness in found]
        worst_beat = max(found, key=itemgetter(1))
    worst = max(late)
    grown = (after - before) * 100 / count
    detail = (
        f"{count} sessions (hello, print, bye) one after another in {end - start:.2f} s "
        f"(median {seconds(statistics.median(opened))} each, client side; pod CPU {seconds(cpu / count)} per "
        f"session); heartbeat lateness max "
        f"{seconds(worst)}, p99 {seconds(p99(late))}; pod RSS {mebibytes(before)} -> {mebibytes(after)}; "
        f"{floor.text(worst_beat)}"
    )
    return [Row(14, "console socket: session open -> close cost (loop stall per open, RSS per 100 sessions)",
                f"stall {seconds(worst)}, RSS {grown:+.0f} KiB/100", "no stall (<= 5 ms), no growth",
                worst <= IDLE_GOAL and grown < 1024, detail)]  # fmt: skip


__all__ = ["run_churn", "run_idle", "run_typing"]
