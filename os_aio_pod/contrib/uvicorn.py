"""``os_aio_pod.contrib.uvicorn``: now ``aiopod.contrib.uvicorn``."""

from __future__ import annotations

from aiopod.contrib.uvicorn import UvicornAdapter

from .. import deprecated

deprecated(__name__, "aiopod.contrib.uvicorn")


__all__ = ["UvicornAdapter"]
