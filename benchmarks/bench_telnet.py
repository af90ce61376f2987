"""Row 16: what a telnet session costs a headless pod, opened and closed.

A headless ``aiopod run`` pod with a 5 ms heartbeat bean serves the telnet console. 100
sessions are opened and closed one after the other, as ``telnet`` would: negotiate a
terminal, wait for the prompt, run ``print('hello')``, hang up (half of them after
``exit()``). Reported: the heartbeat's worst lateness during the churn (the loop stall an
open costs), the pod's RSS per 100 sessions, and the CPU time of the pod's loop thread.
The sessions' ptpython runs in the telnet thread; the loop only runs the statements.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path

from aiopod.console.attach import TelnetClient

from ._harness import PYTHON, BenchmarkError, Row, Settings, bare_heartbeat, clean_env, mebibytes, p99, seconds
from .bench_attach import _lateness, _rss_kib
from .bench_console import HEARTBEAT, INTERVAL

CHURN_SESSIONS = 100
#: The stall an open may cost the loop, and the RSS 100 sessions may leave behind.
STALL_GOAL = 0.020
GROWTH_GOAL_KIB = 4096


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _pod() -> Iterator[tuple[subprocess.Popen[bytes], Path, int]]:
    with tempfile.TemporaryDirectory(prefix="aiopod-bench-") as tmp:
        home = Path(tmp)
        (home / "beans.py").write_text(HEARTBEAT)
        beats = home / "beats.json"
        port = _free_port()
        env = clean_env(HOME=str(home), TERM="xterm")
        command = [PYTHON, "-m", "aiopod", "run", "--no-console-socket", "--stop-wait-time", "2"]
        command += ["--telnet", f"127.0.0.1:{port}", f"beans.heartbeat:path={beats},interval={INTERVAL}"]
        proc = subprocess.Popen(command, cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise BenchmarkError("the pod did not serve its telnet console") from None
                    time.sleep(0.05)
            yield proc, beats, port
        finally:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _session(port: int, leave: bool) -> None:
    """One telnet session: negotiate, wait for the prompt, print, leave or hang up."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        client = TelnetClient(sock, "xterm")
        screen = b""

        def until(text: bytes) -> None:
            nonlocal screen
            while text not in screen:
                data = sock.recv(65536)
                if not data:
                    raise BenchmarkError(f"the pod closed a telnet session before {text!r}")
                screen += client.feed(data)

        until(b">>>")
        sock.sendall(b"print('hel' + 'lo')\r")
        until(b"hello")
        if leave:
            sock.sendall(b"exit()\r")
            while sock.recv(65536):
                pass


def _loop_cpu(pid: int) -> float:
    """CPU seconds of the pod's main thread (its loop): utime + stime."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_churn(settings: Settings) -> list[Row]:
    """Row 16: telnet sessions opened and closed one after the other: loop stall per open, RSS per 100."""
    count = 20 if settings.quick else CHURN_SESSIONS
    with _pod() as (proc, beats, port):
        for n in range(3):  # the first sessions pay imports and caches: not counted
            _session(port, leave=n % 2 == 1)
        time.sleep(0.5)
        before = _rss_kib(proc.pid)
        cpu_before = _loop_cpu(proc.pid)
        opened = []
        with bare_heartbeat(INTERVAL) as floor:
            start = time.monotonic()
            for n in range(count):
                began = time.monotonic()
                _session(port, leave=n % 2 == 1)
                opened.append(time.monotonic() - began)
            end = time.monotonic()
        time.sleep(0.5)
        after = _rss_kib(proc.pid)
        cpu = _loop_cpu(proc.pid) - cpu_before
        found = _lateness(proc, beats, start, end)
        late = [lateness for _, lateness in found]
        worst_beat = max(found, key=itemgetter(1))
    worst = max(late)
    grown = (after - before) * 100 / count
    detail = (
        f"{count} telnet sessions (negotiate, prompt, print, exit() or hang up) one after another in "
        f"{end - start:.2f} s (median {seconds(statistics.median(opened))} each, client side); heartbeat "
        f"lateness max {seconds(worst)}, p99 {seconds(p99(late))}; the loop thread used {cpu:.2f} s of CPU; "
        f"pod RSS {mebibytes(before)} -> {mebibytes(after)}; {floor.text(worst_beat)}"
    )
    return [Row(16, "telnet: session open -> close cost (loop stall per open, RSS per 100 sessions)",
                f"stall {seconds(worst)}, RSS {grown:+.0f} KiB/100",
                f"stall <= {STALL_GOAL * 1e3:g} ms, RSS < {GROWTH_GOAL_KIB // 1024} MiB/100",
                worst <= STALL_GOAL and grown < GROWTH_GOAL_KIB, detail)]  # fmt: skip


__all__ = ["run_churn"]
