"""Networking checks the adapters share: hosts, ports, loopback, and the error a failed bind gives."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping
from typing import Any

from ..pod import BindError

DEFAULT_HOST = "127.0.0.1"


def is_loopback(host: Any) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1): reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except (TypeError, ValueError):
        return False


def as_port(value: Any) -> int:
    """A port number from an int or a string of digits (quick-start kwargs are strings)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError(f"{value!r} is not a port: give a number from 0 to 65535")
    return value


def port_problems(kwargs: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """One line for each port keyword argument given that is not a port (those not given keep their default)."""
    problems = []
    for name in names:
        value = kwargs.get(name)
        if value is None:
            continue
        try:
            as_port(value)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    return problems


def host_problems(kwargs: Mapping[str, Any], default: str = DEFAULT_HOST) -> list[str]:
    """One line when the ``host`` keyword argument is not a host name or address."""
    host = kwargs.get("host", default)
    if not isinstance(host, str) or not host:
        return [f"host: {host!r} must be a host name or address such as '127.0.0.1'"]
    return []


def listen_error(what: str, host: str, port: int | str, exc: OSError) -> BindError:
    """The error a bean raises when it cannot listen: it names the address and the fix."""
    # asyncio puts the address in strerror ("error while attempting to bind on address..."): say it once.
    reason = os.strerror(exc.errno) if exc.errno else exc.strerror or str(exc)
    return BindError(
        f"{what} cannot listen on {host}:{port}: {reason} "
        "(another process may be using it: stop that one or give this bean another port=)"
    )


def bind(what: str, host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not listening yet), or ``listen_error``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it Nagle holds a small response for a delayed ACK (40 ms a request under uvicorn).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise listen_error(what, host, port, exc) from None
    return sock


def check_free(what: str, host: str, port: int) -> None:
    """Raise ``listen_error`` now when ``host:port`` cannot be bound.

    For servers started where a bind error cannot be caught (another thread, another
    library); there is a short window in which another process may still take the port.
    """
    if port != 0:
        bind(what, host, port).close()


__all__ = ["as_port", "bind", "check_free", "host_problems", "is_loopback", "listen_error", "port_problems"]
