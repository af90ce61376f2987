"""The fault matrix: real subprocesses, real signals, bounded time, clean logs."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

from tests.proc import aiopod, run

NOISE = ("never retrieved", "destroyed but it is pending", "never awaited")


def clean(out: str) -> bool:
    return not any(noise in out for noise in NOISE)


def test_half_of_1000_busy_beans_finish_the_rest_are_cancelled(
    write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write(
        "busy.py",
        """
        import asyncio
        from aiopod import pass_context

        @pass_context
        async def busy(context, n, **kw):
            stopping = asyncio.Event()
            await context.add_signal_handler("SIGTERM", lambda **kw: stopping.set())
            if n == 999:  # the last to start (beans start in order, a batch per turn of the loop)
                print("all " + "started", flush=True)
            while not stopping.is_set():
                await asyncio.sleep(0.01)
            if n % 2:
                await asyncio.sleep(60)  # the slow half: cancelled after STOP_WAIT_TIME
            else:
                await asyncio.sleep(0.1)  # the fast half: finishes within it
        """,
    )
    write("pod.py", "STOP_WAIT_TIME = 1\nBEANS = [{'core': 'busy:busy', 'n': n} for n in range(1000)]\n")
    proc = aiopod("run", "-c", "pod.py", cwd=tmp_path)
    proc.wait_for("all started")
    sent = proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    elapsed = time.monotonic() - sent
    assert 1.0 <= elapsed <= 1.5 + 0.5, elapsed  # STOP_WAIT_TIME + 0.5 s (+ process exit)
    assert "cancelling 500 beans still running" in proc.output
    assert clean(proc.output)


def test_10k_idle_beans_start_and_stop(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write(
        "idle.py",
        """
        import asyncio
        from aiopod import pass_context

        @pass_context
        async def idle(context, n, **kw):
            stopping = asyncio.Event()
            await context.add_signal_handler("SIGTERM", lambda **kw: stopping.set())
            if n == 9999:
                print("last " + "started", flush=True)
            await stopping.wait()
        """,
    )
    write("pod.py", "BEANS = [{'core': 'idle:idle', 'n': n} for n in range(10000)]\n")
    proc = aiopod("run", "-c", "pod.py", cwd=tmp_path)
    proc.wait_for("last started", timeout=30)
    sent = proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert time.monotonic() - sent < 3.0
    assert clean(proc.output)


def test_restart_storm_of_10k_beans_stays_quiet_and_responsive(
    write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write(
        "storm.py",
        """
        import asyncio, time

        async def crash(**kw):
            raise RuntimeError("crash")

        async def probe(**kw):
            # the pod stays responsive: a 50 ms timer keeps firing during the storm
            late = 0.0
            for _ in range(20):
                start = time.monotonic()
                await asyncio.sleep(0.05)
                late = max(late, time.monotonic() - start - 0.05)
            print(f"probe worst lateness {late:.3f}", flush=True)
        """,
    )
    write(
        "pod.py",
        """
        POLICY = {"policy": "always", "max": 2, "window": 60, "backoff": 0.01}
        BEANS = [{"core": "storm:crash", "restart": POLICY} for _ in range(10000)] + [{"core": "storm:probe"}]
        """,
    )
    code, out = run("run", "-c", "pod.py", cwd=tmp_path, timeout=90)
    assert code == 1
    assert out.count("Traceback") <= 60
    assert "more bean failures and restarts were not logged one by one" in out
    lateness = float(out.split("probe worst lateness ")[1].split()[0])
    assert lateness < 2.0, out[-2000:]
    assert clean(out)


def test_untracked_tasks_failing_handlers_and_periodic_blocking_are_bounded(
    write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write(
        "faults.py",
        """
        import asyncio, time
        from aiopod import pass_context

        async def spawner(**kw):
            for _ in range(100):
                asyncio.get_running_loop().create_task(asyncio.sleep(3600))
            print("spawned " + "100", flush=True)
            await asyncio.sleep(3600)

        @pass_context
        async def bad_handler(context, **kw):
            def explode(**kw):
                raise ValueError("handler exploded")
            await context.add_signal_handler("SIGTERM", explode)
            await asyncio.sleep(3600)

        async def blocker(**kw):
            while True:
                print("blocking " + "now", flush=True)
                time.sleep(2)  # blocks the loop for 2 s every few seconds
                await asyncio.sleep(3)
        """,
    )
    write(
        "pod.py",
        "STOP_WAIT_TIME = 0.5\nBEANS = [{'core': 'faults:spawner'}, {'core': 'faults:bad_handler'},"
        " {'core': 'faults:blocker'}]\n",
    )
    proc = aiopod("run", "-c", "pod.py", cwd=tmp_path)
    proc.wait_for("spawned 100")
    proc.wait_for("blocking now")  # the SIGTERM lands while the loop is blocked
    sent = proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    # the loop answers after the 2 s block, then 0.5 s wait + cancel: before the deadline (3.5 s)
    assert time.monotonic() - sent < 3.4
    out = proc.output
    assert "handler exploded" in out
    assert "the event loop has been blocked for" in out and "time.sleep(2)" in out
    assert clean(out)


def test_sigterm_during_a_slow_config_import_is_bounded(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write(
        "slow.py",
        """
        import time
        print("importing " + "slowly", flush=True)
        time.sleep(30)

        async def main(**kw):
            pass
        """,
    )
    proc = aiopod("run", "slow:main", cwd=tmp_path)
    proc.wait_for("importing slowly")
    sent = proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert time.monotonic() - sent < 2.0
    assert "SIGTERM while starting" in proc.output


def test_debug_turns_on_asyncio_debug_and_slow_callback_logs(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write(
        "slowcb.py",
        """
        import asyncio, time

        async def slow(**kw):
            print("debug", asyncio.get_running_loop().get_debug(), flush=True)
            time.sleep(0.3)  # a 300 ms step: asyncio's debug mode reports it
        """,
    )
    code, out = run("run", "--debug", "slowcb:slow", cwd=tmp_path)
    assert code == 0, out
    assert "debug True" in out
    assert "took 0.3" in out  # asyncio: "Executing <Task ...> took 0.300 seconds"
