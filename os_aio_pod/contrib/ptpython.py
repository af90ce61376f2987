"""``os_aio_pod.contrib.ptpython``: now ``aiopod.contrib.ptpython``."""

from __future__ import annotations

from aiopod.contrib.ptpython import TelnetServerAdapter

from .. import deprecated

deprecated(__name__, "aiopod.contrib.ptpython")


__all__ = ["TelnetServerAdapter"]
