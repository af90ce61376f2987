"""``os_aio_pod.contrib.aiohttp``: now ``aiopod.contrib.aiohttp``."""

from __future__ import annotations

from aiopod.contrib.aiohttp import WebAdapter

from .. import deprecated

deprecated(__name__, "aiopod.contrib.aiohttp")


__all__ = ["WebAdapter"]
