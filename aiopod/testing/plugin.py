"""The pytest plugin (entry point ``pytest11``): fixtures for testing your own pods."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import start_pod
from .process import Proc, aiopod


@pytest.fixture
def aiopod_pod() -> Callable[..., Any]:
    """``async with aiopod_pod("app:worker", config={...}) as pod:`` in the test's loop."""
    return start_pod


@pytest.fixture
def aiopod_process(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Start ``aiopod ARGS`` as a subprocess (cwd: the test's tmp dir); killed at teardown."""
    started: list[Proc] = []

    def start(*args: str, cwd: str | Path | None = None, env: dict[str, str] | None = None) -> Proc:
        started.append(aiopod(*args, cwd=cwd if cwd is not None else tmp_path, env=env))
        return started[-1]

    yield start
    for proc in started:
        proc.kill()
