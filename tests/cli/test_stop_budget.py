"""The stop budget holds for what outlives the loop: threads, executor jobs, odd wait times.

"exit <= STOP_WAIT_TIME + 3 s, always" (README, Stopping), through real processes and signals.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.proc import HARD_MARGIN, Proc, aiopod, stop

Write = Callable[[str, str], Path]

#: With STOP_WAIT_TIME None (for ever), how long a blocked loop has to answer a stop (README).
ACK_BUDGET = 8.0
#: Process start, interpreter teardown and a loaded 2-core machine.
SLACK = 1.5

THREADS = """
    import asyncio
    import atexit
    import logging
    import logging.handlers
    import sys
    import threading
    import time

    from aiopod import pass_context

    @pass_context
    async def stuck_thread(context):
        # A non-daemon thread that never ends: the interpreter would wait for it for ever.
        threading.Thread(target=threading.Event().wait, name="stuck-worker").start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    @pass_context
    async def tidy_thread(context):
        stopping = threading.Event()

        def work():
            stopping.wait()
            time.sleep(0.3)  # some cleanup after the stop, well within the budget
            print("worker finished its cleanup", flush=True)

        threading.Thread(target=work, name="tidy-worker").start()
        await context.add_signal_handler("SIGTERM", lambda **kw: stopping.set())
        print("ready", flush=True)
        await asyncio.Event().wait()

    async def leaves_a_thread():
        def work():
            print("thread still working", flush=True)
            threading.Event().wait()

        threading.Thread(target=work, name="left-behind").start()
        print("bean done", flush=True)

    @pass_context
    async def stuck_with_exit_duties(context):
        # What the interpreter's exit would have done: an atexit handler, a log handler that
        # writes only when logging shuts down, a line still in stdout's buffer.
        memory = logging.handlers.MemoryHandler(100, target=logging.FileHandler("duties.log"))
        logging.getLogger("duties").addHandler(memory)
        logging.getLogger("duties").warning("kept in memory until logging shuts down")
        atexit.register(print, "atexit handler ran")
        print("buffered stdout line")  # stdout is a pipe (PYTHONUNBUFFERED off): block-buffered
        threading.Thread(target=threading.Event().wait, name="stuck-worker").start()
        print("ready", file=sys.stderr)  # stderr is line-buffered: stdout keeps its line
        await asyncio.Event().wait()

    async def executor_job():
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, time.sleep, 3600)
"""


def test_a_non_daemon_thread_does_not_keep_the_process_past_the_budget(write: Write, tmp_path: Path) -> None:
    wait = 0.5
    write("beans.py", THREADS)
    with aiopod("run", "--stop-wait-time", str(wait), "beans.stuck_thread", cwd=tmp_path) as proc:
        code, elapsed = stop(proc, ready="ready", timeout=60)
    out = proc.output
    assert code == 1, out
    assert "1 threads still running after the stop budget, not waited for: 'stuck-worker' (status 1)" in out
    assert "Thread 0x" in out and "in wait" in out  # the stacks, the stuck thread's among them
    assert elapsed < wait + HARD_MARGIN + SLACK, f"exited {elapsed:.2f} s after SIGTERM\n{out}"
    assert elapsed > wait, out  # the thread got the budget first


def test_ending_the_process_past_stuck_threads_still_runs_atexit_and_flushes_logs_and_stdio(
    write: Write, tmp_path: Path
) -> None:
    wait = 0.5
    write("beans.py", THREADS)
    env = {"PYTHONUNBUFFERED": ""}
    with aiopod("run", "--stop-wait-time", str(wait), "beans.stuck_with_exit_duties", cwd=tmp_path, env=env) as proc:
        code, elapsed = stop(proc, ready="ready", timeout=60)
    out = proc.output
    assert code == 1, out
    assert "threads still running after the stop budget, not waited for: 'stuck-worker'" in out
    assert "atexit handler ran" in out
    assert "buffered stdout line" in out
    assert (tmp_path / "duties.log").read_text() == "kept in memory until logging shuts down\n"
    assert elapsed < wait + HARD_MARGIN + SLACK, f"exited {elapsed:.2f} s after SIGTERM\n{out}"


def test_a_thread_that_ends_within_the_budget_is_waited_for(write: Write, tmp_path: Path) -> None:
    write("beans.py", THREADS)
    with aiopod("run", "--stop-wait-time", "0.5", "beans.tidy_thread", cwd=tmp_path) as proc:
        code, elapsed = stop(proc, ready="ready", timeout=60)
    out = proc.output
    assert code == 0, out
    assert "worker finished its cleanup" in out
    assert "threads still running" not in out
    assert elapsed < 0.5 + HARD_MARGIN, out


def test_a_thread_that_outlives_every_bean_is_waited_for_until_a_stop_signal(write: Write, tmp_path: Path) -> None:
    wait = 0.5
    write("beans.py", THREADS)
    with aiopod("run", "--stop-wait-time", str(wait), "beans:leaves_a_thread", cwd=tmp_path) as proc:
        proc.wait_for("bean done")
        proc.wait_for("thread still working")
        with pytest.raises(subprocess.TimeoutExpired):
            proc.popen.wait(0.5)  # as Python does: the process waits for its non-daemon thread
        code, elapsed = stop(proc, ready="thread still working", timeout=60)
    out = proc.output
    assert code == 1, out
    assert "1 threads still running after the stop budget, not waited for: 'left-behind' (status 1)" in out
    assert "stopping" not in out  # no pod left to stop: only the threads' budget
    assert elapsed < wait + HARD_MARGIN + SLACK, f"exited {elapsed:.2f} s after SIGTERM\n{out}"


def test_an_executor_job_left_running_does_not_hold_the_exit(write: Write, tmp_path: Path) -> None:
    wait = 0.5
    write("beans.py", THREADS)
    with aiopod("run", "--stop-wait-time", str(wait), "beans:executor_job", cwd=tmp_path) as proc:
        code, elapsed = stop(proc, ready="ready", timeout=60)
    out = proc.output
    assert code == 1, out
    assert "cancelling 1 beans still running" in out
    assert "threads still running after the stop budget" in out and "'aiopod-executor_0'" in out
    assert elapsed < wait + HARD_MARGIN + SLACK, f"exited {elapsed:.2f} s after SIGTERM\n{out}"


BLOCKER = """
    import time

    async def blocker():
        print("ready", flush=True)
        while True:
            time.sleep(0.05)  # blocks the loop for good
"""


def test_infinite_stop_wait_time_still_ends_a_loop_blocking_pod(write: Write, tmp_path: Path) -> None:
    write("block.py", BLOCKER)
    with aiopod("run", "--stop-wait-time", "inf", "block:blocker", cwd=tmp_path) as proc:
        code, elapsed = stop(proc, ready="ready", timeout=60)
    out = proc.output
    assert code == 1, out
    assert "the event loop did not answer the stop" in out
    assert 'block.py", line 7 in blocker' in out
    assert "OverflowError" not in out
    assert elapsed < ACK_BUDGET + SLACK, f"exited {elapsed:.2f} s after SIGTERM\n{out}"


EMBEDDED_BEANS = """
    import asyncio

    from aiopod import pass_context

    @pass_context
    async def polite(context):
        stop = asyncio.Event()
        await context.add_signal_handler("SIGTERM", lambda **kw: stop.set())
        print("ready", flush=True)
        await stop.wait()

    async def swallower():
        print("ready", flush=True)
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                pass
"""

EMBEDDER = """
    import sys

    from aiopod import run_pod
    from aiopod.pod import load

    settings = load(None, ["embedded:polite"])
    settings.config["STOP_WAIT_TIME"] = float(sys.argv[1])  # as an embedder may, unvalidated
    status = run_pod(settings)
    print("run_pod returned", status, flush=True)
"""


@pytest.mark.parametrize("wait", ["nan", "inf", "1e300", "1e10"])
def test_run_pod_stops_cleanly_whatever_the_wait_time(write: Write, tmp_path: Path, wait: str) -> None:
    write("embedded.py", EMBEDDED_BEANS)
    write("embed.py", EMBEDDER)
    with Proc([sys.executable, "embed.py", wait], cwd=tmp_path) as proc:
        code, elapsed = stop(proc, ready="ready", timeout=60)
    out = proc.output
    assert code == 0, out
    assert "run_pod returned 0" in out
    assert "SIGTERM: stopping; waiting for ever for 1 running beans" in out
    assert "Traceback" not in out and "stacks follow" not in out, out
    assert elapsed < HARD_MARGIN, out


REFUSER = """
    import asyncio

    from aiopod import run_pod
    from aiopod.pod import load

    settings = load(None, ["embedded:swallower"], {"STOP_WAIT_TIME": 0.2})
    status = run_pod(settings)
    print("run_pod returned", status, "and the embedder goes on", flush=True)
    print("the embedder can run another loop:", asyncio.run(asyncio.sleep(0, "yes")), flush=True)
"""


def test_run_pod_returns_when_a_bean_refuses_to_stop_and_never_ends_the_process(write: Write, tmp_path: Path) -> None:
    write("embedded.py", EMBEDDED_BEANS)
    write("refuse.py", REFUSER)
    with Proc([sys.executable, "refuse.py"], cwd=tmp_path) as proc:
        code, _ = stop(proc, ready="ready", timeout=60)
    out = proc.output
    assert code == 0, out  # the embedder's own exit, not one forced by run_pod
    assert "bean #1 (embedded:swallower) refused to stop" in out
    assert "run_pod returned 1 and the embedder goes on" in out
    assert "the embedder can run another loop: yes" in out
    assert "Task was destroyed but it is pending" not in out, out
