"""``aiopod.contrib.simple.Server``: startup, run, on_stop on the pod's stop signal, cleanup always."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from tests.contrib.conftest import Write, printed, start
from tests.proc import stop


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_stop_signal_runs_on_stop_then_cleanup_and_exits_0(name: str) -> None:
    with start("contrib_simple.py") as proc:
        proc.wait_for("clock: tick 2")
        code, elapsed = stop(proc, getattr(signal, name))
    out = proc.output
    assert code == 0, out
    steps = r"clock: startup\n(clock: tick \d+\n)+clock: on_stop \((\w+)\)\nclock: cleanup after \d+ ticks\n"
    match = re.fullmatch(steps, printed(out))
    assert match is not None, out
    assert match[2] == name
    assert out.count("on_stop") == 1
    assert elapsed < 2.0, out


SCAFFOLDS = """
    import asyncio

    from aiopod.contrib.simple import Server


    class Failing(Server):
        async def run(self, **kwargs):
            await asyncio.sleep(0)
            raise RuntimeError("run broke")

        def cleanup(self, **kwargs):
            print("cleanup ran", kwargs, flush=True)


    class Deaf(Server):
        def run(self, **kwargs):
            return self._forever()

        async def _forever(self):
            print("deaf: running", flush=True)
            await asyncio.Event().wait()  # never looks at self.stopping

        async def cleanup(self, **kwargs):
            print("deaf: cleanup ran", flush=True)


    class SlowStop(Server):
        async def run(self, **kwargs):
            print("slow: running", flush=True)
            while not self.stopping:
                await asyncio.sleep(0.01)

        async def on_stop(self, signal, **kwargs):
            self.stopping = True
            await asyncio.sleep(0.3)
            print("slow: on_stop done", signal, kwargs, flush=True)

        def cleanup(self, **kwargs):
            print("slow: cleanup ran", flush=True)
"""


def test_cleanup_runs_when_run_raises(write: Write, tmp_path: Path) -> None:
    write("scaffolds.py", SCAFFOLDS)
    config = write("failing.py", "BEANS = [{'core': 'scaffolds.Failing', 'label': 'failing', 'answer': 42}]\n")
    with start(config) as proc:
        code = proc.wait()
    out = proc.output
    assert code == 1, out
    assert "cleanup ran {'answer': 42}" in out
    assert "bean #1 'failing' (scaffolds.Failing) failed" in out
    assert "RuntimeError: run broke" in out


def test_a_run_that_ignores_the_stop_is_cancelled_in_time_for_cleanup(write: Write) -> None:
    write("scaffolds.py", SCAFFOLDS)
    config = write("deaf.py", "STOP_WAIT_TIME = 2\nBEANS = [{'core': 'scaffolds.Deaf', 'label': 'deaf'}]\n")
    with start(config) as proc:
        proc.wait_for("deaf: running")
        code, elapsed = stop(proc)
    out = proc.output
    assert code == 0, out
    # cut 0.5 s (a quarter of STOP_WAIT_TIME) before the pod would cancel it; the line says
    # the time that was left when it was written, a little less on a busy host
    cut = re.search(r"deaf: run\(\) was still going (\d+\.\d\d) s before the end of STOP_WAIT_TIME; cancelled it", out)
    assert cut is not None, out
    assert 0.3 <= float(cut.group(1)) <= 0.5, out
    assert "deaf: cleanup ran" in out
    assert "cancelling" not in out  # the bean ended by itself
    assert 1.3 < elapsed < 2.0, out


def test_cleanup_runs_when_the_pod_cancels_the_bean(write: Write) -> None:
    write("scaffolds.py", SCAFFOLDS)
    config = write("deaf.py", "STOP_WAIT_TIME = 2\nBEANS = [{'core': 'scaffolds.Deaf', 'label': 'deaf'}]\n")
    with start(config) as proc:
        proc.wait_for("deaf: running")
        proc.signal(signal.SIGINT)
        proc.wait_for("SIGINT: stopping")
        code, elapsed = stop(proc, signal.SIGINT)  # a second Ctrl-C cancels every bean at once
    out = proc.output
    assert code == 0, out
    assert "cancelling 1 beans still running: #1 'deaf'" in out
    assert "deaf: cleanup ran" in out
    assert elapsed < 1.0, out


def test_cleanup_waits_for_an_async_on_stop_that_is_still_running(write: Write) -> None:
    write("scaffolds.py", SCAFFOLDS)
    config = write("slow.py", "BEANS = [{'core': 'scaffolds.SlowStop', 'label': 'slow', 'colour': 'red'}]\n")
    with start(config) as proc:
        proc.wait_for("slow: running")
        code, _ = stop(proc)
    out = proc.output
    assert code == 0, out
    assert "slow: on_stop done SIGTERM {'colour': 'red'}\nslow: cleanup ran" in out
