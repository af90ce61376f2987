"""Helpers for in-process pod tests: a timeout on every coroutine, and a bounded wait on state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: Every in-process test coroutine gets this long before it fails as a hang.
TIMEOUT = 10.0


def arun(coro: Coroutine[Any, Any, T], timeout: float = TIMEOUT) -> T:
    """Run ``coro`` on a fresh loop; a hang fails with TimeoutError instead of blocking."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(predicate: Callable[[], Any], within: float = 5.0) -> None:
    """Wait until ``predicate()`` is true; fail with TimeoutError after ``within`` seconds.

    For pod state (a bean's state, a registered handler) that the pod sets from callbacks
    and exposes no event for; the check runs every few milliseconds.
    """
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - no event to wait on: the pod sets this state itself
            await asyncio.sleep(0.005)
