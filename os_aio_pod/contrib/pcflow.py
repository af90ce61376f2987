"""``os_aio_pod.contrib.pcflow``: now ``aiopod.contrib.pcflow``."""

from __future__ import annotations

from aiopod.contrib.pcflow import Server

from .. import deprecated

deprecated(__name__, "aiopod.contrib.pcflow")


__all__ = ["Server"]
