"""The loop watchdog has a real on/off option: ``WATCHDOG`` / ``--watchdog/--no-watchdog``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aiopod.pod import ConfigError, Pod, load
from tests.proc import run

from .helpers import arun

BLOCKER = """
import time

async def blocks():
    time.sleep(1.6)  # blocks the loop past the watchdog's 1 s threshold
    print("unblocked", flush=True)
"""


@pytest.mark.parametrize(
    ("options", "env", "warned"),
    [
        ((), {}, True),
        (("--no-watchdog",), {}, False),
        ((), {"AIOPOD_WATCHDOG": "off"}, False),
        (("--watchdog",), {"AIOPOD_WATCHDOG": "off"}, True),  # the option beats the environment
    ],
)
def test_the_watchdog_reports_a_blocked_loop_only_when_on(
    tmp_path: Path, options: tuple[str, ...], env: dict[str, str], warned: bool
) -> None:
    (tmp_path / "blocker.py").write_text(BLOCKER)
    code, out = run("run", *options, "blocker.blocks", cwd=tmp_path, env=env)
    assert code == 0, out
    assert "unblocked" in out
    assert ("the event loop has been blocked" in out) is warned, out


def test_a_pod_without_watchdog_reports_no_lag() -> None:
    async def main() -> tuple[float, int]:
        pod = Pod(watchdog=False)

        async def blocks() -> None:
            import time

            time.sleep(0.3)  # noqa: ASYNC251 - blocking the loop is the point

        pod.add_bean(blocks)
        assert await pod.run() == 0
        health = pod.health()
        await asyncio.sleep(0)
        return health.max_lag, health.blocked_episodes

    assert arun(main()) == (0.0, 0)


def test_a_bad_watchdog_value_is_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "pod.py"
    config.write_text("WATCHDOG = 'sometimes'\n")
    with pytest.raises(ConfigError) as info:
        load(config, environ={})
    assert info.value.problems == [f"{config}: WATCHDOG 'sometimes' must be True or False"]
