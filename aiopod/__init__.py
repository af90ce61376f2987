"""aiopod: run many asyncio coroutines ("beans") in one process, with a console on its loop.

The names below come from ``aiopod.pod``, imported on first use: the ``aiopod`` command
imports this package before it can hold the process signals (``aiopod._early``), and
the runtime takes a tenth of a second to import.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds here
if TYPE_CHECKING:
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


def __getattr__(name: str) -> object:
    """Import ``aiopod.pod`` on the first use of one of its names (PEP 562)."""
    if name not in __all__:
        raise AttributeError(f"module 'aiopod' has no attribute {name!r}")
    from . import pod

    value = getattr(pod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
