"""Rows 4 and 11: seconds from SIGTERM to process exit for ``aiopod run`` with idle beans.

Row 4: 10k beans that end on their async SIGTERM handler. Row 11: 100k well-behaved
beans with no handler, cancelled after STOP_WAIT_TIME (goal: exit 0 within
STOP_WAIT_TIME + 1 s; issue 15, item 9).
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from ._harness import BenchmarkError, Row, Settings, aiopod_command, clean_env, seconds

BEANS = 10_000
RUNS = 5
GOAL = 0.5
IDLE = """
import asyncio

from aiopod.pod import pass_context

_ready = 0


@pass_context
async def idle(context, n):
    global _ready
    done = asyncio.Event()

    async def on_sigterm(**kwargs):
        done.set()

    await context.add_signal_handler("SIGTERM", on_sigterm)
    _ready += 1
    if _ready == n:
        print("all beans ready", flush=True)
    await done.wait()
"""
CONFIG = f"BEANS = [{{'core': 'idle:idle', 'n': {BEANS}}} for _ in range({BEANS})]\n"
BIG = 100_000
BIG_RUNS = 3
BIG_WAIT = 1.0
DEAF = """
import asyncio

from aiopod.pod import pass_context

_ready = 0


@pass_context
async def idle(context, n):
    global _ready
    _ready += 1
    if _ready == n:
        print("all beans ready", flush=True)
    await asyncio.Event().wait()  # no SIGTERM handler: it ends when it is cancelled
"""


def _stop_once(cwd: Path, *options: str) -> tuple[float, str]:
    """Start the pod, wait until every bean waits, SIGTERM it; (seconds to exit, its output)."""
    command = [*aiopod_command(), "run", "-c", "pod.py", *options]
    with subprocess.Popen(
        command, cwd=cwd, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if "all beans ready" in line:
                    break
            else:
                raise BenchmarkError(f"the pod exited {proc.wait()} before its beans were ready")
            sent = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=60)  # returns at EOF: when the process has gone
            elapsed = time.perf_counter() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
    if proc.returncode != 0:
        raise BenchmarkError(f"aiopod run exited {proc.returncode} after SIGTERM: {output.strip()[-300:]}")
    return elapsed, output


def run(settings: Settings) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="aiopod-bench-") as tmp:
        cwd = Path(tmp)
        (cwd / "idle.py").write_text(IDLE)
        (cwd / "pod.py").write_text(CONFIG)
        times = [_stop_once(cwd)[0] for _ in range(settings.runs(RUNS))]
    median = statistics.median(times)
    detail = f"runs: {', '.join(seconds(t) for t in times)}; beans end on their async SIGTERM handler"
    return [
        Row(4, "SIGTERM -> exit, 10k idle beans (absolute)", seconds(median), f"<= {GOAL:g} s", median <= GOAL, detail)
    ]


def run_100k(settings: Settings) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="aiopod-bench-") as tmp:
        cwd = Path(tmp)
        (cwd / "idle.py").write_text(DEAF)
        (cwd / "pod.py").write_text(f"BEANS = [{{'core': 'idle:idle', 'n': {BIG}}} for _ in range({BIG})]\n")
        times = []
        for _ in range(settings.runs(BIG_RUNS)):
            try:
                times.append(_stop_once(cwd, "--stop-wait-time", str(BIG_WAIT))[0])
            except BenchmarkError as exc:
                return [Row(11, "SIGTERM -> exit, 100k idle beans", "error", f"<= {BIG_WAIT + 1:g} s", False, str(exc))]
    median = statistics.median(times)
    goal = BIG_WAIT + 1.0
    detail = f"runs: {', '.join(seconds(t) for t in times)}; STOP_WAIT_TIME {BIG_WAIT:g} s, beans end when cancelled"
    return [
        Row(
            11,
            "SIGTERM -> exit 0, 100k idle beans (absolute)",
            seconds(median),
            f"<= {goal:g} s",
            median <= goal,
            detail,
        )
    ]
