"""The stop contract at scale and the exit status, through ``aiopod run`` in a subprocess (issue 15).

- 100k idle, well-behaved beans end within STOP_WAIT_TIME + 1 s with status 0 (item 9);
- a bean's ``sys.exit(n)`` is the pod's exit status, and a SIGTERM in a restart storm
  always exits 0 (item 13);
- 10k beans refusing to stop do not log 10k ERROR lines (item 14).
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from tests.proc import HARD_MARGIN, aiopod, run, stop

BEANS = """
import asyncio
import sys

from aiopod import pass_context

_ready = 0


@pass_context
async def idle(context, n):
    # Well behaved: it has no SIGTERM handler and ends when it is cancelled.
    global _ready
    _ready += 1
    if _ready == int(n):
        print("all beans ready", flush=True)
    await asyncio.Event().wait()


@pass_context
async def stubborn(context, n):
    global _ready
    _ready += 1
    if _ready == int(n):
        print("all beans ready", flush=True)
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # refuses to stop


async def exits(code):
    await asyncio.sleep(0.05)
    sys.exit(int(code) if code.isdigit() else code)


async def forever():
    await asyncio.Event().wait()


async def storm():
    await asyncio.sleep(0.001)
    raise RuntimeError("storm")
"""


@pytest.fixture
def beans(tmp_path: Path) -> Path:
    (tmp_path / "beans.py").write_text(BEANS)
    return tmp_path


@pytest.mark.alone
def test_100k_idle_beans_stop_within_stop_wait_time_plus_one_second_with_status_0(beans: Path) -> None:
    n, wait = 100_000, 1.0
    (beans / "pod.py").write_text(f"BEANS = [{{'core': 'beans:idle', 'n': {n}}} for _ in range({n})]\n")
    with aiopod("run", "-c", "pod.py", "--stop-wait-time", str(wait), cwd=beans) as proc:
        proc.wait_for("all beans ready", timeout=120)
        code, elapsed = stop(proc, timeout=60)
    out = proc.output
    assert code == 0, out[-2000:]
    assert f"cancelling {n} beans still running" in out
    assert "refused" not in out and "did not stop within" not in out
    # The start and the cancel pass hand the loop back every 1000 beans: never blocked.
    assert "the event loop has been blocked" not in out, out[-2000:]
    # Exit 0 says the stop deadline never had to end the process (it exits 1 with stacks).
    # The time itself, goal STOP_WAIT_TIME + 1 s, is benchmark row 11's: the cancel pass is
    # about a second of CPU, which a test on a shared machine may not get in a second.
    assert elapsed <= wait + HARD_MARGIN + 10, f"{elapsed:.2f} s"


@pytest.mark.parametrize(("code", "status"), [("3", 3), ("0", 0), ("bye", 1)])
def test_a_bean_calling_sys_exit_sets_the_exit_status(beans: Path, code: str, status: int) -> None:
    exit_code, out = run("run", "--stop-wait-time", "0.2", f"beans.exits:code={code}", "beans.forever", cwd=beans)
    assert exit_code == status, out
    if status:
        shown = code if code.isdigit() else repr(code)
        assert f"bean #1 (beans.exits) called sys.exit({shown}): stopping the pod" in out, out
        assert "Traceback" not in out  # a deliberate exit, not a crash
    else:
        assert "cancelling 1 beans still running: #2 (beans.forever)" in out


def test_the_first_sys_exit_wins(beans: Path) -> None:
    exit_code, out = run(
        "run", "--stop-wait-time", "0.2", "beans.exits:code=5", "beans.forever", "beans.exits:code=7", cwd=beans
    )
    assert exit_code == 5, out


@pytest.mark.parametrize("after", [0.2, 0.5, 0.9])
def test_sigterm_during_a_restart_storm_always_exits_0(beans: Path, after: float) -> None:
    restart = "{'policy': 'always', 'max': 10**9, 'window': 60, 'backoff': 0}"
    (beans / "pod.py").write_text(f"BEANS = [{{'core': 'beans:storm', 'restart': {restart}}} for _ in range(200)]\n")
    with aiopod("run", "-c", "pod.py", "--stop-wait-time", "1", cwd=beans) as proc:
        proc.wait_for("restarting", timeout=30)
        time.sleep(after)  # not a synchronisation: the point is a SIGTERM at varying moments of the storm
        proc.signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, proc.output[-2000:]
    assert "giving up" not in proc.output


@pytest.mark.alone
def test_10k_beans_refusing_to_stop_log_a_few_lines_and_a_count(beans: Path) -> None:
    n, wait = 10_000, 0.5
    (beans / "pod.py").write_text(f"BEANS = [{{'core': 'beans:stubborn', 'n': {n}}} for _ in range({n})]\n")
    with aiopod("run", "-c", "pod.py", "--stop-wait-time", str(wait), cwd=beans) as proc:
        proc.wait_for("all beans ready", timeout=60)
        code, elapsed = stop(proc, timeout=60)
    out = proc.output
    assert code == 1, out[-2000:]
    assert out.count("refused to stop: it went on") == 10, out[-3000:]
    summary = re.search(r"(\d+) more beans refused to stop \(not named one by one; see pod.refused\)", out)
    assert summary is not None and int(summary.group(1)) == n - 10, out[-2000:]
    assert len(out.encode()) < 20_000
    assert elapsed <= wait + HARD_MARGIN + 2.0
