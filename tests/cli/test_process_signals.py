"""The process signals besides the first SIGTERM: SIGHUP, SIGUSR1/2, SIGQUIT, and signals taken away.

Real ``aiopod run`` subprocesses and real signals; each test waits for a line, never a sleep.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.proc import aiopod, stop

Write = Callable[[str, str], Path]

LISTENER = """
    import asyncio

    from aiopod import pass_context

    @pass_context
    async def listener(context, name="SIGHUP"):
        stop = asyncio.Event()
        heard = 0

        def on_named(signal, **kwargs):
            nonlocal heard
            heard += 1
            print("bean heard", signal, heard, flush=True)

        def on_stop(signal, **kwargs):
            print("stop handler got", signal, flush=True)
            stop.set()

        if name != "nothing":
            await context.add_signal_handler(name, on_named)
        await context.add_signal_handler("SIGTERM", on_stop)
        print("ready", flush=True)
        await stop.wait()
        print("listener ended", flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2])
def test_sighup_sigusr1_sigusr2_reach_the_beans_handlers_by_name(write: Write, tmp_path: Path, sig: int) -> None:
    name = signal.Signals(sig).name
    write("beans.py", LISTENER)
    with aiopod("run", f"beans.listener:name={name}", cwd=tmp_path) as proc:
        proc.wait_for("ready")
        for n in (1, 2):  # the pod goes on after each one
            proc.signal(sig)
            proc.wait_for(f"bean heard {name} {n}")
        proc.wait_for(f"{name}: delivered to 1 handlers")
        code, elapsed = stop(proc)
    out = proc.output
    assert code == 0, out
    assert out.count(f"bean heard {name}") == 2, out
    assert "stop handler got SIGTERM" in out
    assert out.count(": stopping;") == 1, out
    assert elapsed < 3.0, out


def test_sighup_that_no_bean_handles_stops_the_pod_gracefully(write: Write, tmp_path: Path) -> None:
    write("beans.py", LISTENER)
    with aiopod("run", "--stop-wait-time", "10", "beans.listener:name=nothing", cwd=tmp_path) as proc:
        proc.wait_for("ready")
        sent = proc.signal(signal.SIGHUP)
        code = proc.wait()
        elapsed = time.monotonic() - sent
    out = proc.output
    assert code == 0, out
    assert "SIGHUP and no bean handles it: stopping as on SIGTERM" in out
    assert "stop handler got SIGTERM" in out  # the beans hear the stop they know
    assert "listener ended" in out
    assert "cancelling" not in out
    assert elapsed < 3.0, out


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGUSR2])
def test_sigusr_that_no_bean_handles_is_logged_and_the_pod_goes_on(write: Write, tmp_path: Path, sig: int) -> None:
    name = signal.Signals(sig).name
    write("beans.py", LISTENER)
    with aiopod("run", "beans.listener:name=nothing", cwd=tmp_path) as proc:
        proc.wait_for("ready")
        proc.signal(sig)
        proc.wait_for(f"{name} and no bean handles it (context.add_signal_handler('{name}', ...)): ignored")
        assert proc.popen.poll() is None  # still running
        code, _ = stop(proc)
    out = proc.output
    assert code == 0, out
    assert "stop handler got SIGTERM" in out


TICKERS = """
    import asyncio
    import threading

    async def parked(n):
        if n == "2":
            print("ready", flush=True)
        await asyncio.Event().wait()

    async def ticker():
        threading.Thread(target=threading.Event().wait, name="side-thread", daemon=True).start()
        ticks = 0
        while True:
            await asyncio.sleep(0.01)
            ticks += 1
            if ticks % 20 == 0:
                print("tick", ticks, flush=True)
"""


def test_sigquit_dumps_every_beans_and_threads_stack_and_the_pod_goes_on(write: Write, tmp_path: Path) -> None:
    write("beans.py", TICKERS)
    write("pod.py", "BEANS = [{'core': 'beans:parked', 'n': str(n)} for n in range(3)] + [{'core': 'beans:ticker'}]\n")
    with aiopod("run", "--stop-wait-time", "0.2", "-c", "pod.py", cwd=tmp_path) as proc:
        proc.wait_for("ready")
        proc.wait_for("tick 20")
        proc.signal(signal.SIGQUIT)
        out = proc.wait_for("the stacks of 4 running beans and of every thread; the pod goes on")
        proc.wait_for("Current thread")  # faulthandler's dump of the threads
        last = max(int(n) for n in re.findall(r"tick (\d+)", proc.output))
        proc.wait_for(f"tick {last + 20}\n")  # the ticker advances after the dump
        code, _ = stop(proc)
    out = proc.output
    assert code == 0, out
    # three beans parked on the same line are one group; the ticker is another
    assert re.search(
        r"Beans #1 \(beans:parked\), #2 \(beans:parked\), #3 \(beans:parked\) \(most recent call last\)", out
    )
    assert "Bean #4 (beans:ticker) (most recent call last)" in out
    assert "in parked\n    await asyncio.Event().wait()" in out, out
    assert re.search(r'beans.py", line \d+, in ticker\n', out), out  # asleep, or running when the signal came
    assert "Current thread 0x" in out  # the main thread, then the others (the side thread among them)
    assert out.count("Thread 0x") >= 2, out
    assert " in run_pod\n" in out, out  # the main thread, running the pod's loop
    assert "threading.py" in out


TAKERS = """
    import asyncio
    import signal
    import sys

    from aiopod import pass_context

    async def _stop_hears(context, stop):
        def on_stop(signal, **kwargs):
            print("stop handler got", signal, flush=True)
            stop.set()
        await context.add_signal_handler("SIGTERM", on_stop)

    @pass_context
    async def ignorer(context):
        stop = asyncio.Event()
        await _stop_hears(context, stop)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # what some libraries do
        print("ready", flush=True)
        await stop.wait()

    @pass_context
    async def c_ignorer(context):
        import ctypes

        stop = asyncio.Event()
        await _stop_hears(context, stop)
        libc = ctypes.CDLL(None)  # what a C extension may do, behind Python's back
        libc.signal.argtypes, libc.signal.restype = [ctypes.c_int, ctypes.c_void_p], ctypes.c_void_p
        libc.signal(signal.SIGTERM, 1)  # SIG_IGN
        print("ready", flush=True)
        await stop.wait()

    @pass_context
    async def loop_handler(context):
        stop = asyncio.Event()
        await _stop_hears(context, stop)
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGTERM, lambda: print("the library's loop callback ran", flush=True)
        )
        print("ready", flush=True)
        await stop.wait()

    @pass_context
    async def exiter(context):
        stop = asyncio.Event()
        await _stop_hears(context, stop)

        def library_handler(signum, frame):
            print("the library's handler ran", flush=True)
            sys.exit(0)

        signal.signal(signal.SIGTERM, library_handler)
        print("ready", flush=True)
        await stop.wait()
"""


@pytest.mark.parametrize(
    ("bean", "loop_type", "became", "chained"),
    [
        ("ignorer", "asyncio", "SIG_IGN", None),
        ("c_ignorer", "asyncio", "SIG_IGN (set from C code)", None),
        ("loop_handler", "asyncio", "asyncio.unix_events._sighandler_noop", "the library's loop callback ran"),
        ("loop_handler", "uvloop", "uvloop.loop.Loop.__sighandler", "the library's loop callback ran"),
        ("exiter", "asyncio", "beans.exiter.<locals>.library_handler", "the library's handler ran"),
    ],
)
def test_a_bean_that_takes_sigterm_away_does_not_keep_the_pod_from_stopping(
    write: Write, tmp_path: Path, bean: str, loop_type: str, became: str, chained: str | None
) -> None:
    if loop_type == "uvloop":
        pytest.importorskip("uvloop")
    write("beans.py", TAKERS)
    args = ("run", "--loop-type", loop_type, "--stop-wait-time", "10", f"beans.{bean}")
    with aiopod(*args, cwd=tmp_path) as proc:
        proc.wait_for("ready")
        proc.wait_for(f"SIGTERM was taken away (its handler became {became}")
        code, elapsed = stop(proc)
    out = proc.output
    assert code == 0, out
    assert "aiopod owns it and took it back" in out
    assert "stop handler got SIGTERM" in out
    assert out.count(": stopping;") == 1, out
    if chained is not None:
        assert chained in out
    assert "cancelling" not in out
    assert elapsed < 3.0, out
