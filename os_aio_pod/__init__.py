"""os-aio-pod 0.1.40's import names, kept so its users move over unchanged.

Every module here re-exports the aiopod object under the seed's name (they are the same
objects, not copies). The first one imported warns, once per process, naming the aiopod
path to use instead.
"""

from __future__ import annotations

import warnings
from typing import Any

from aiopod.pod.errors import AiopodDeprecationWarning

__all__ = ["__version__", "version_info"]

_warned = False


def deprecated(old: str, new: str, advice: str = "") -> None:
    """Warn that ``old`` (a seed module) is now ``new``, the first time any seed name is used."""
    global _warned
    if _warned:
        return
    _warned = True
    advice = advice or f"import from {new} (the same objects)"
    # stacklevel 3 is the module importing ``old``: warnings skips importlib's own frames.
    warnings.warn(f"{old} is deprecated: {advice}; os_aio_pod is now aiopod", AiopodDeprecationWarning, stacklevel=3)


def __getattr__(name: str) -> Any:
    if name in {"__version__", "version_info"}:
        import aiopod

        deprecated("os_aio_pod.__version__", "aiopod.__version__")
        version = aiopod.__version__
        return version if name == "__version__" else tuple(int(p) if p.isdigit() else p for p in version.split("."))
    raise AttributeError(f"module 'os_aio_pod' has no attribute {name!r}")
