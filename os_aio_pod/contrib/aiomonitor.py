"""``os_aio_pod.contrib.aiomonitor``: now ``aiopod.contrib.aiomonitor``."""

from __future__ import annotations

from aiopod.contrib.aiomonitor import AioMonitorAdapter

from .. import deprecated

deprecated(__name__, "aiopod.contrib.aiomonitor")


__all__ = ["AioMonitorAdapter"]
