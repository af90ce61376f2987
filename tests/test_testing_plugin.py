"""``aiopod.testing``: the pytest plugin users get, used on a real pod and against real mistakes."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aiopod import BeanContext
from aiopod.testing import PodProblem, Proc, start_pod

pytest_plugins = ["pytester"]


def arun(coro: Any, timeout: float = 10) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Echo:
    def __init__(self, context: BeanContext) -> None:
        self.context = context
        self.heard: list[str] = []
        self.ready = False

    async def __call__(self, **kwargs: Any) -> None:
        async def hear(signal: str, text: str = "", **kw: Any) -> str:
            self.heard.append(text)
            return text.upper()

        stop = asyncio.Event()
        await self.context.add_signal_handler("say", hear)
        await self.context.add_signal_handler("SIGTERM", lambda **kw: stop.set())
        self.ready = True
        await stop.wait()


def test_start_pod_runs_beans_in_the_test_loop_and_stops_them() -> None:
    async def scenario() -> None:
        async with start_pod({"core": Echo, "label": "echo"}) as harness:
            await harness.wait_for_state("echo", "running")
            await harness.wait_until(lambda: harness.bean("echo").instance.ready)
            results = await harness.send_signal("say", text="hi")
            assert [r.value for r in results] == ["HI"]
            assert harness.bean("echo").instance.heard == ["hi"]
        assert harness.bean("echo").state.value == "finished"

    arun(scenario())


def test_a_leaked_task_fails_the_test() -> None:
    async def leaky(**kw: Any) -> None:
        asyncio.get_running_loop().create_task(asyncio.sleep(3600), name="forgotten")

    async def scenario() -> None:
        async with start_pod(leaky) as harness:
            await harness.wait_for_state(1)

    with pytest.raises(PodProblem, match=r"task leaked.*forgotten"):
        arun(scenario())


def test_a_failed_bean_fails_the_test_unless_expected() -> None:
    async def broken(**kw: Any) -> None:
        raise ValueError("broken bean")

    async def scenario(expect: bool) -> None:
        async with start_pod(broken, expect_failures=expect) as harness:
            await harness.wait_for_state(1)

    with pytest.raises(PodProblem, match="broken bean"):
        arun(scenario(False))
    arun(scenario(True))


def test_plugin_fixtures_work_in_a_users_test_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        app="""
        import asyncio
        async def worker(**kw):
            print("worker " + "up", flush=True)
            await asyncio.sleep(3600)
        """,
        test_user="""
        import asyncio, signal
        def test_in_loop(aiopod_pod):
            async def go():
                async with aiopod_pod("app:worker", stop_wait_time=0.1) as pod:
                    await pod.wait_for_state(1, "running")
            asyncio.run(go())

        def test_subprocess(aiopod_process):
            proc = aiopod_process("run", "--stop-wait-time", "0.1", "app:worker")
            proc.wait_for("worker up")
            proc.signal(signal.SIGTERM)
            assert proc.wait() == 0
        """,
    )
    result = pytester.runpytest_subprocess("-q")  # the plugin loads through its entry point
    result.assert_outcomes(passed=2)


def test_subprocess_helper_reports_output_when_text_never_comes(
    aiopod_process: Callable[..., Proc], write: Callable[[str, str], Path]
) -> None:
    quiet = "import asyncio\nasync def main(**kw):\n    print('up', flush=True)\n    await asyncio.sleep(3600)\n"
    write("quiet.py", quiet)
    proc = aiopod_process("run", "--stop-wait-time", "0.1", "quiet:main")
    proc.wait_for("up")  # the pod handles SIGTERM from here on (a SIGTERM sent earlier kills the interpreter)
    with pytest.raises(AssertionError, match="did not appear"):
        proc.wait_for("never printed", timeout=0.5)
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
