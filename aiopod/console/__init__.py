"""The console: ptpython beside the pod's loop, its helper namespace, telnet, and the console socket.

Names are imported when first used: ``aiopod run`` serves the console socket
(:mod:`aiopod.console.server`, stdlib only) and must not pay for ptpython.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .shell import run_shell

__all__ = ["run_shell"]


def __getattr__(name: str) -> Any:
    if name == "run_shell":
        from .shell import run_shell

        return run_shell
    raise AttributeError(f"module 'aiopod.console' has no attribute {name!r}")
