"""``os_aio_pod.contrib.tcp_server``: now ``aiopod.contrib.tcp_server``."""

from __future__ import annotations

from aiopod.contrib.tcp_server import Server, TCPServerAdapter

from .. import deprecated

deprecated(__name__, "aiopod.contrib.tcp_server")


__all__ = ["Server", "TCPServerAdapter"]
