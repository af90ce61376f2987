"""``os_aio_pod.contrib.fromstdin``: now ``aiopod.contrib.fromstdin``."""

from __future__ import annotations

from aiopod.contrib.fromstdin import Server

from .. import deprecated

deprecated(__name__, "aiopod.contrib.fromstdin")


__all__ = ["Server"]
