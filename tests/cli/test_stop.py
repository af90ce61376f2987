"""Stopping ``aiopod run`` with real signals: handlers, the stop budget, and beans that will not end."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from aiopod.pod.pod import CANCEL_GRACE
from tests.proc import HARD_MARGIN, aiopod, stop

Write = Callable[[str, str], Path]

#: Above any reasonable stop in these tests: a stop that takes this long waited for the budget.
LONG_WAIT = 10.0

POLITE = """
    import asyncio

    from aiopod import pass_context

    polite_ready = asyncio.Event()

    @pass_context
    async def polite(context):
        stop = asyncio.Event()

        def on_stop(signal, **kwargs):
            print("handler got", signal, kwargs, flush=True)
            stop.set()

        await context.add_signal_handler("SIGTERM", on_stop)
        await context.add_signal_handler("SIGINT", on_stop)
        print("ready on", type(asyncio.get_running_loop()).__name__, flush=True)
        polite_ready.set()
        await stop.wait()
        print("polite bean ended", flush=True)
"""


@pytest.mark.parametrize(("loop_type", "loop_class"), [("asyncio", "_UnixSelectorEventLoop"), ("uvloop", "Loop")])
def test_sigterm_runs_sigterm_handlers_once_and_exits_0_quickly(
    write: Write, tmp_path: Path, loop_type: str, loop_class: str
) -> None:
    if loop_type == "uvloop":
        pytest.importorskip("uvloop")
    write("beans.py", POLITE)
    with aiopod(
        "run", "--loop-type", loop_type, "--stop-wait-time", str(LONG_WAIT), "beans.polite", cwd=tmp_path
    ) as proc:
        code, elapsed = stop(proc, ready="ready")
    out = proc.output
    assert code == 0, out
    assert f"ready on {loop_class}" in out
    assert out.count("handler got") == 1
    assert "handler got SIGTERM {}" in out
    assert "polite bean ended" in out
    assert "SIGTERM: stopping; waiting up to 10 s for 1 running beans" in out
    assert "cancelling" not in out
    assert elapsed < 3.0, f"took {elapsed:.2f} s to stop a bean that ends on SIGTERM\n{out}"


def test_first_sigint_runs_sigint_handlers_and_exits_0(write: Write, tmp_path: Path) -> None:
    write("beans.py", POLITE)
    with aiopod("run", "--stop-wait-time", str(LONG_WAIT), "beans.polite", cwd=tmp_path) as proc:
        code, elapsed = stop(proc, signal.SIGINT, ready="ready")
    out = proc.output
    assert code == 0, out
    assert out.count("handler got") == 1
    assert "handler got SIGINT {}" in out
    assert "polite bean ended" in out
    assert "KeyboardInterrupt" not in out
    assert elapsed < 3.0, out


STUBBORN = """
    import asyncio

    async def ignorer():
        print("ready", flush=True)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            print("ignorer cancelled", flush=True)
            raise
"""


def test_sigterm_cancels_a_bean_that_ignores_it_after_stop_wait_time(write: Write, tmp_path: Path) -> None:
    wait = 1.0
    write("beans.py", STUBBORN)
    with aiopod("run", "--stop-wait-time", str(wait), "beans:ignorer", cwd=tmp_path) as proc:
        code, elapsed = stop(proc, ready="ready")
    out = proc.output
    assert code == 0, out
    assert "SIGTERM: stopping; waiting up to 1 s for 1 running beans" in out
    assert "cancelling 1 beans still running: #1 (beans:ignorer)" in out
    assert "ignorer cancelled" in out
    assert "refused" not in out
    assert wait <= elapsed < wait + 1.5, f"stopped after {elapsed:.2f} s with --stop-wait-time {wait}\n{out}"


LEAVES_FILES_OPEN = """
    import asyncio
    import atexit
    import os

    from aiopod import pass_context

    JOURNAL = open("journal.txt", "w")  # a module's file, never closed
    CYCLES = os.open("cycle.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)


    class Holder:
        def __del__(self, write=os.write, fd=CYCLES):
            write(fd, b"finalised by the collector\\n")


    @pass_context
    async def writer(context):
        notes = open("notes.txt", "w")  # a local the bean never closes
        notes.write("written by the bean\\n")
        JOURNAL.write("journal line\\n")
        cycle = Holder()
        cycle.me = cycle
        del cycle  # garbage that only the collector finalises (CPython's last collection at exit)
        atexit.register(print, "atexit handler ran", flush=True)
        print("ready", flush=True)
        await asyncio.Event().wait()  # no SIGTERM handler: cancelled after STOP_WAIT_TIME
"""


def test_after_sigterm_the_files_beans_left_open_are_flushed_and_atexit_handlers_run(
    write: Write, tmp_path: Path
) -> None:
    write("beans.py", LEAVES_FILES_OPEN)
    with aiopod("run", "--stop-wait-time", "0.2", "beans.writer", cwd=tmp_path) as proc:
        code, _ = stop(proc, ready="ready")
    out = proc.output
    assert code == 0, out
    assert "atexit handler ran" in out
    assert (tmp_path / "notes.txt").read_text() == "written by the bean\n"
    assert (tmp_path / "journal.txt").read_text() == "journal line\n"
    assert (tmp_path / "cycle.txt").read_text() == "finalised by the collector\n"


def test_second_sigint_cancels_at_once_without_waiting_for_stop_wait_time(write: Write, tmp_path: Path) -> None:
    write("beans.py", STUBBORN)
    with aiopod("run", "--stop-wait-time", str(LONG_WAIT), "beans:ignorer", cwd=tmp_path) as proc:
        proc.wait_for("ready")
        first = proc.signal(signal.SIGINT)
        proc.wait_for("SIGINT: stopping")
        proc.signal(signal.SIGINT)
        code = proc.wait()
        elapsed = time.monotonic() - first
    out = proc.output
    assert code == 0, out
    assert "cancelling 1 beans still running" in out
    assert "ignorer cancelled" in out
    assert elapsed < 3.0, f"second SIGINT took {elapsed:.2f} s (stop wait time {LONG_WAIT} s)\n{out}"


BURST = """
    import asyncio
    import pathlib

    from aiopod import pass_context

    @pass_context
    async def counted(context):
        stop = asyncio.Event()
        calls = 0

        def on_stop(signal, **kwargs):
            nonlocal calls
            calls += 1
            print("handler call", calls, signal, flush=True)
            stop.set()

        await context.add_signal_handler("SIGTERM", on_stop)
        print("ready", flush=True)
        await stop.wait()
        # Keep the stop going until the whole burst has landed: the test writes this file after it.
        while not pathlib.Path("burst-sent").exists():
            await asyncio.sleep(0.01)
        print("counted bean ended after", calls, "handler calls", flush=True)
"""


def test_burst_of_sigterms_is_a_single_stop(write: Write, tmp_path: Path) -> None:
    write("beans.py", BURST)
    with aiopod("run", "--stop-wait-time", str(LONG_WAIT), "beans.counted", cwd=tmp_path) as proc:
        proc.wait_for("ready")
        first = proc.signal(signal.SIGTERM)
        for _ in range(49):
            proc.signal(signal.SIGTERM)
        (tmp_path / "burst-sent").touch()
        code = proc.wait()
        elapsed = time.monotonic() - first
    out = proc.output
    assert code == 0, out
    assert re.findall(r"^handler call .*$", out, re.MULTILINE) == ["handler call 1 SIGTERM"], out
    assert out.count(": stopping;") == 1, out
    assert "counted bean ended after 1 handler calls" in out
    assert "cancelling" not in out
    assert elapsed < 3.0, out


SWALLOWER = """
    import asyncio

    async def swallower():
        print("ready", flush=True)
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                print("swallowed a cancel", flush=True)
"""


def test_bean_swallowing_cancellation_is_named_as_refusing_and_exits_1_in_bounded_time(
    write: Write, tmp_path: Path
) -> None:
    wait = 0.5
    write("beans.py", SWALLOWER)
    with aiopod("run", "--stop-wait-time", str(wait), "beans:swallower", cwd=tmp_path) as proc:
        code, elapsed = stop(proc, ready="ready")
    out = proc.output
    assert code == 1, out
    assert "swallowed a cancel" in out
    assert out.count("refused to stop") == 1, out
    assert "bean #1 (beans:swallower) refused to stop" in out
    assert "Task was destroyed but it is pending" not in out
    assert "never retrieved" not in out
    assert "did not end within" not in out  # the pod reported it; the stop deadline did not have to fire
    bound = wait + HARD_MARGIN + 0.5
    assert wait + CANCEL_GRACE <= elapsed < bound, f"stopped after {elapsed:.2f} s (bound {bound} s)\n{out}"


SPINNER = """
    async def spinner():
        print("ready", flush=True)
        while True:
            pass
"""


def test_sigterm_ends_a_process_whose_bean_blocks_the_loop_and_dumps_stacks(write: Write, tmp_path: Path) -> None:
    wait = 0.5
    write("spin.py", SPINNER)
    with aiopod("run", "--stop-wait-time", str(wait), "spin:spinner", cwd=tmp_path) as proc:
        code, elapsed = stop(proc, ready="ready")
    out = proc.output
    assert code == 1, out
    assert "the event loop did not answer the stop" in out
    assert "most recent call first" in out  # faulthandler's dump of the stacks
    assert 'spin.py", line 4 in spinner' in out
    assert wait < elapsed < wait + 4.0, f"stopped after {elapsed:.2f} s\n{out}"


def test_pod_stop_from_a_bean_stops_like_sigterm(write: Write, tmp_path: Path) -> None:
    write(
        "beans.py",
        POLITE
        + """
    @pass_context
    async def stopper(context):
        await polite_ready.wait()
        print("stopper stopping the pod", flush=True)
        context.pod.stop()
    """,
    )
    write("pod.py", 'BEANS = [{"core": "beans.polite", "label": "polite"}, {"core": "beans.stopper"}]\n')
    with aiopod("run", "-c", "pod.py", "--stop-wait-time", str(LONG_WAIT), cwd=tmp_path) as proc:
        proc.wait_for("stopper stopping the pod")
        asked = time.monotonic()  # the time from here is the stop's (not the interpreter's start-up)
        code = proc.wait()
    elapsed = time.monotonic() - asked
    out = proc.output
    assert code == 0, out
    assert "stopper stopping the pod" in out
    assert out.count("handler got") == 1
    assert "handler got SIGTERM {}" in out
    assert "SIGTERM: stopping; waiting up to 10 s" in out
    assert "polite bean ended" in out
    assert "cancelling" not in out
    assert elapsed < 3.0, out


def test_stop_wait_time_none_waits_for_a_bean_that_ends_on_its_own(write: Write, tmp_path: Path) -> None:
    write(
        "beans.py",
        """
        import asyncio

        from aiopod import pass_context

        @pass_context
        async def slow_cleanup(context):
            stop = asyncio.Event()
            await context.add_signal_handler("SIGTERM", lambda **kwargs: stop.set())
            print("ready", flush=True)
            await stop.wait()
            print("cleaning up", flush=True)
            await asyncio.sleep(1.5)  # cleanup that outlasts the file's STOP_WAIT_TIME
            print("cleanup done", flush=True)
        """,
    )
    write("pod.py", 'STOP_WAIT_TIME = 0.2\nBEANS = [{"core": "beans.slow_cleanup"}]\n')
    with aiopod("run", "-c", "pod.py", "--stop-wait-time", "none", cwd=tmp_path) as proc:
        code, elapsed = stop(proc, ready="ready")
    out = proc.output
    assert code == 0, out
    assert "SIGTERM: stopping; waiting for ever for 1 running beans" in out
    assert "cleanup done" in out
    assert "cancelling" not in out
    assert elapsed >= 1.5, out


EXITING_HANDLERS = """
    import asyncio

    from aiopod import pass_context

    @pass_context
    async def exiting(context):
        stop = asyncio.Event()

        def sync_exit(**kwargs):
            raise SystemExit(3)

        def sync_interrupt(**kwargs):
            raise KeyboardInterrupt

        async def async_exit(**kwargs):
            raise SystemExit(4)

        def last(**kwargs):
            print("the last handler ran", flush=True)
            stop.set()

        for handler in (sync_exit, sync_interrupt, async_exit, last):
            await context.add_signal_handler("SIGTERM", handler)
        print("ready", flush=True)
        await stop.wait()
        print("exiting bean ended", flush=True)
"""


def test_handlers_raising_systemexit_or_keyboardinterrupt_do_not_skip_the_others(write: Write, tmp_path: Path) -> None:
    write("beans.py", EXITING_HANDLERS)
    with aiopod("run", "--stop-wait-time", str(LONG_WAIT), "beans.exiting", cwd=tmp_path) as proc:
        code, elapsed = stop(proc, ready="ready")
    out = proc.output
    assert code == 0, out
    assert "the last handler ran" in out
    assert "exiting bean ended" in out
    for name, error in (("sync_exit", "SystemExit: 3"), ("sync_interrupt", "KeyboardInterrupt"),
                        ("async_exit", "SystemExit: 4")):  # fmt: skip
        assert f"handler exiting.<locals>.{name} of bean #1 (beans.exiting) failed on signal 'SIGTERM'" in out
        assert error in out
    assert "never retrieved" not in out
    assert "cancelling" not in out
    assert elapsed < 3.0, out
