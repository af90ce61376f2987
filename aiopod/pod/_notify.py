"""systemd's readiness protocol (``Type=notify``): one datagram to ``$NOTIFY_SOCKET``, no dependency."""

from __future__ import annotations

import logging
import os
import socket

logger = logging.getLogger("aiopod")


def notify(state: str) -> bool:
    """Send ``state`` (``READY=1``, ``STOPPING=1``...) when run under a service manager.

    Returns whether a message was sent; a failure is logged, never raised.
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        logger.warning("could not notify the service manager at %s: %s", os.environ["NOTIFY_SOCKET"], exc)
        return False
    return True
