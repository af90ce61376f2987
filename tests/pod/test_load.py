"""One path for a config: ``Pod.load`` applies and reports the reserved keys; ``start_pod`` reads ``config_file``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aiopod.pod import ConfigError, pass_context
from aiopod.testing import start_pod

from .helpers import arun

Write = Callable[[str, str], Path]


@pytest.fixture
def levels() -> Iterator[None]:
    """``load()`` sets the process's log levels: put them back after the test."""
    saved = {name: logging.getLogger(name).level for name in ("", "aiopod")}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pass_context(label="waiter")
async def waiter(context: Any, **kwargs: Any) -> None:
    await asyncio.Event().wait()


def test_load_applies_stop_wait_time_log_level_and_debug_and_says_what_cannot_change(
    write: Write, caplog: pytest.LogCaptureFixture, levels: None
) -> None:
    path = write(
        "more.py",
        """
        STOP_WAIT_TIME = 2
        LOG_LEVEL = "warning"
        LOOP_TYPE = "uvloop"
        GREETING = "hi"
        """,
    )

    async def main() -> None:
        async with start_pod(waiter, config={"LOOP_TYPE": "asyncio", "LOG_LEVEL": "INFO"}) as harness:
            pod = harness.pod
            with caplog.at_level(logging.INFO, logger="aiopod"):
                assert pod.load(str(path)) == []
                assert logging.getLogger("aiopod").level == logging.WARNING
            assert (pod.stop_wait_time, pod.config.STOP_WAIT_TIME) == (2.0, 2.0)
            assert pod.config.LOG_LEVEL == "WARNING"
            assert pod.config.LOOP_TYPE == "asyncio"  # unchanged
            assert pod.config.GREETING == "hi"
            messages = [r.getMessage() for r in caplog.records if r.name == "aiopod"]
            assert f"{path}: STOP_WAIT_TIME 1.0 -> 2.0" in messages  # start_pod's pods wait 1 s
            assert f"{path}: LOG_LEVEL 'INFO' -> 'WARNING'" in messages
            assert (
                f"{path}: LOOP_TYPE 'uvloop' cannot change in a running pod (it stays 'asyncio'); "
                "restart the pod to use it"
            ) in messages

            debug = write("debug.py", "DEBUG = True\n")
            pod.load(str(debug))
            assert pod.loop.get_debug() is True
            assert pod.config.LOG_LEVEL == "DEBUG"  # DEBUG turns on debug logging, as in the seed
            assert logging.getLogger("aiopod").level == logging.DEBUG
            pod.loop.set_debug(False)

    arun(main())


def test_load_of_a_bad_file_changes_nothing_and_names_every_problem(write: Write) -> None:
    path = write("bad.py", "STOP_WAIT_TIME = float('nan')\nLOG_LEVEL = 'LOUD'\nBEANS = [{'core': 'nosuch_xyz.f'}]\n")

    async def main() -> None:
        async with start_pod(waiter) as harness:
            before = harness.pod.stop_wait_time
            with pytest.raises(ConfigError) as info:
                harness.pod.load(str(path))
            assert info.value.problems[:2] == [
                f"{path}: LOG_LEVEL 'LOUD' is not a level; use DEBUG, INFO, WARNING, ERROR or CRITICAL",
                f"{path}: STOP_WAIT_TIME nan is not a number of seconds >= 0 (or None to wait for ever)",
            ]
            assert info.value.problems[2].startswith(f"{path}: BEANS[0].core: cannot import 'nosuch_xyz.f'")
            assert harness.pod.stop_wait_time == before
            assert "LOG_LEVEL" not in harness.pod.config

    arun(main())


def test_load_puts_the_config_folder_first_on_sys_path_and_starts_its_beans(write: Write, tmp_path: Path) -> None:
    write("sub/near.py", "import asyncio\nasync def near(box, **kw):\n    box.put_nowait(kw)\n")
    path = write(
        "sub/conf.py", "import asyncio\nBOX = asyncio.Queue()\nBEANS = [{'core': 'near.near', 'box': BOX, 'n': 1}]\n"
    )

    async def main() -> None:
        async with start_pod(waiter) as harness:
            (bean,) = harness.pod.load(str(path))
            assert await asyncio.wait_for(harness.pod.config.BOX.get(), 5) == {"n": 1}
            await harness.wait_for_state(bean.id)

    arun(main())
    import sys

    assert sys.path[0] == str((tmp_path / "sub").resolve())


def test_start_pod_reads_a_beans_config_file_as_aiopod_run_does(write: Write, tmp_path: Path) -> None:
    write("settings.py", "port = 18124\nserver = 'mine'\nimport os\n_private = 1\n")
    got: list[dict[str, Any]] = []

    async def bean(**kwargs: Any) -> None:
        got.append(kwargs)

    async def main() -> None:
        entry = {"core": bean, "config_file": str(tmp_path / "settings.py"), "port": 1}
        async with start_pod(entry) as harness:
            await harness.wait_until(lambda: got)

    arun(main())
    assert got == [{"port": 18124, "server": "mine"}]  # the file wins; modules and _private are not settings


def test_a_hot_added_bean_reads_its_config_file_too(
    write: Write, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write("settings.py", "port = 18124\n")
    got: list[dict[str, Any]] = []

    async def bean(**kwargs: Any) -> None:
        got.append(kwargs)

    async def main() -> None:
        async with start_pod(waiter) as harness:
            added = harness.pod.add_bean(bean, "hot", config_file=str(tmp_path / "settings.py"), port=1, x=2)
            assert added.label == "hot"
            await harness.wait_until(lambda: got)

    with caplog.at_level(logging.WARNING, logger="aiopod"):
        arun(main())
    assert got == [{"port": 18124, "x": 2}]
    assert any("'port' = 1 is overridden by" in r.getMessage() for r in caplog.records)
