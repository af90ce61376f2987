"""Restart storms stay readable, and a bean may restart itself."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aiopod import BeanContext, Pod, pass_context
from aiopod.pod.bean import classify
from tests.pod.helpers import arun, until
from tests.proc import run


def test_a_restart_storm_is_logged_in_aggregate(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write(
        "storm.py",
        """
        async def crash(**kw):
            raise RuntimeError("crash")
        """,
    )
    write(
        "pod.py",
        """
        BEANS = [
            {"core": "storm:crash", "restart": {"policy": "always", "max": 3, "window": 60, "backoff": 0.001}}
            for _ in range(500)
        ]
        """,
    )
    code, out = run("run", "-c", "pod.py", cwd=tmp_path, timeout=60)
    assert code == 1
    # 500 beans x 4 attempts = 2,000 failures: a handful logged one by one, the rest counted
    assert out.count("Traceback") <= 40
    assert "more bean failures and restarts were not logged one by one" in out
    assert "never retrieved" not in out


def test_a_bean_can_restart_itself() -> None:
    runs: list[int] = []

    async def main() -> None:
        @pass_context
        async def restarts_once(context: BeanContext, **kw: Any) -> None:
            runs.append(context.bean.restarts if context.bean else -1)
            if len(runs) == 1:
                await context.pod.restart(context.id)  # cancels this very run on the way

        pod = Pod(stop_wait_time=1)
        bean = pod.add_bean(restarts_once)
        runner = asyncio.create_task(pod.run())
        await until(lambda: len(runs) == 2 and bean.ended)
        assert await runner == 0
        assert bean.restarts == 1
        assert bean.state.value == "finished"

    arun(main())
    assert runs == [0, 1]


def test_an_async_generator_is_named_as_such() -> None:
    async def produce() -> Any:
        yield 1

    with pytest.raises(TypeError, match="an async generator function is not a bean"):
        classify(produce)


def test_hot_add_checks_the_beans_kwargs_like_a_config_would() -> None:
    from aiopod import ConfigError
    from aiopod.console.telnet import TelnetConsole

    pod = Pod()
    with pytest.raises(ConfigError, match="not loopback and no password"):
        pod.add_bean(TelnetConsole, host="0.0.0.0")
    assert pod.beans == []
