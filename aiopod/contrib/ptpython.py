"""The seed's path for the telnet console: ``aiopod.contrib.ptpython.TelnetServerAdapter``."""

from __future__ import annotations

from ..console.telnet import TelnetConsole

TelnetServerAdapter = TelnetConsole

__all__ = ["TelnetServerAdapter"]
