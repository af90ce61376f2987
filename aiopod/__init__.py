"""aiopod: run many asyncio coroutines ("beans") in one process, with a console on its loop."""

from __future__ import annotations

from .pod import (
    AiopodError,
    Bean,
    BeanContext,
    BeanNotFound,
    BeanState,
    Config,
    ConfigError,
    HandlerResult,
    Pod,
    PodStateError,
    SignalResults,
    pass_context,
    run_pod,
)

__version__ = "0.2.0"

__all__ = [
    "AiopodError",
    "Bean",
    "BeanContext",
    "BeanNotFound",
    "BeanState",
    "Config",
    "ConfigError",
    "HandlerResult",
    "Pod",
    "PodStateError",
    "SignalResults",
    "__version__",
    "pass_context",
    "run_pod",
]
