"""``os_aio_pod.contrib.simple``: now ``aiopod.contrib.simple``."""

from __future__ import annotations

from aiopod.contrib.simple import Server

from .. import deprecated

deprecated(__name__, "aiopod.contrib.simple")


__all__ = ["Server"]
