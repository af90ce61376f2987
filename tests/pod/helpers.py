"""Helpers for in-process pod tests: a timeout on every coroutine; waits come from ``aiopod.testing``."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiopod.testing import wait_until as until

__all__ = ["TIMEOUT", "arun", "until"]

T = TypeVar("T")

#: Every in-process test coroutine gets this long before it fails as a hang.
TIMEOUT = 10.0


def arun(coro: Coroutine[Any, Any, T], timeout: float = TIMEOUT) -> T:
    """Run ``coro`` on a fresh loop; a hang fails with TimeoutError instead of blocking."""
    return asyncio.run(asyncio.wait_for(coro, timeout))
