"""Event loop factories, named by ``LOOP_TYPE`` (imported only when used)."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable

from .errors import ConfigError


def loop_factory(loop_type: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The factory for ``asyncio``, ``uvloop`` or ``auto`` (uvloop when installed)."""
    if loop_type == "auto":
        loop_type = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    if loop_type == "asyncio":
        return asyncio.new_event_loop
    if loop_type == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise ConfigError(
                "LOOP_TYPE 'uvloop': uvloop is not installed; pip install 'aiopod[uvloop]' or use asyncio"
            ) from None
        return uvloop.new_event_loop
    raise ConfigError(f"LOOP_TYPE {loop_type!r} is not one of asyncio, uvloop, auto")
