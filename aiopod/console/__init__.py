"""The console: ptpython on the pod's loop, its helper namespace, and (later) telnet."""

from __future__ import annotations

from .repl import PodRepl
from .shell import run_shell

__all__ = ["PodRepl", "run_shell"]
