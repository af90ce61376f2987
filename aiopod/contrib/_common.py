"""What the adapters share: import strings, ports, listening errors and the stop signals."""

from __future__ import annotations

import inspect
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..pod import BeanContext, ConfigError
from ..pod._importer import ImportStringError, import_from_string

#: The pod sends these names to its beans when the process gets SIGINT or SIGTERM.
STOP_SIGNALS = ("SIGINT", "SIGTERM")
#: Part of STOP_WAIT_TIME kept back so an adapter ends by itself before the pod cancels it.
STOP_MARGIN = 0.5


async def maybe_await(value: Any) -> Any:
    """``await value`` when a hook was ``async def``; a plain value is returned as it is."""
    if inspect.isawaitable(value):
        return await value
    return value


async def on_stop_signals(context: BeanContext, handler: Callable[..., Any]) -> None:
    """Call ``handler(signal=name)`` when the pod stops on SIGINT or SIGTERM."""
    for name in STOP_SIGNALS:
        await context.add_signal_handler(name, handler)


def load(value: Any, what: str) -> Any:
    """``value`` itself, or the object that an import string names.

    Raises ``ConfigError`` that names the keyword argument (``what``) to fix.
    """
    if not isinstance(value, str):
        return value
    try:
        return import_from_string(value)
    except ImportStringError as exc:
        raise ConfigError(f"{what}: {exc}") from None


def app_problems(kwargs: Mapping[str, Any], hint: str, accepts: Callable[[Any], bool], expected: str) -> list[str]:
    """Check the ``app`` kwarg of a web adapter: present, importable, of a type ``accepts``."""
    if "app" not in kwargs:
        return [f'app: missing; add "app": "package.module:app" ({hint})']
    try:
        app = load(kwargs["app"], "app")
    except ConfigError as exc:
        return list(exc.problems)
    if accepts(app):
        return []
    return [f"app: {kwargs['app']!r} is a {type(app).__name__}, not {expected}"]


def port_problems(kwargs: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """Check each port keyword argument given (a number from 0 to 65535, or a string of digits)."""
    problems = []
    for name in names:
        value = kwargs.get(name)
        if value is None:
            continue  # not given: the adapter's default
        try:
            as_port(value)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    return problems


def as_port(value: Any) -> int:
    """A port number from an int or a string of digits (quick-start kwargs are strings)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError(f"{value!r} is not a port: give a number from 0 to 65535")
    return value


def check_host(kwargs: Mapping[str, Any], default: str = "127.0.0.1") -> list[str]:
    host = kwargs.get("host", default)
    if not isinstance(host, str) or not host:
        return [f"host: {host!r} must be a host name or address such as '127.0.0.1'"]
    return []


def listen_error(what: str, host: str, port: int | str, exc: OSError) -> ConfigError:
    """The error a bean raises when it cannot listen: it names the address and the fix."""
    # asyncio puts the address in strerror ("error while attempting to bind on address..."): say it once.
    reason = os.strerror(exc.errno) if exc.errno else exc.strerror or str(exc)
    return ConfigError(
        f"{what} cannot listen on {host}:{port}: {reason} "
        "(another process may be using it: stop that one or give this bean another port=)"
    )


def check_free(what: str, host: str, port: int) -> None:
    """Raise ``listen_error`` now when ``host:port`` cannot be bound.

    For servers started where a bind error cannot be caught (another thread, another
    library); there is a short window in which another process may still take the port.
    """
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise listen_error(what, host, port, exc) from None


def stop_budget(context: BeanContext, margin: float = STOP_MARGIN) -> float | None:
    """Seconds this bean has to end after a stop signal, less ``margin`` (None: no limit)."""
    wait = context.pod.stop_wait_time
    return None if wait is None else max(0.0, wait - margin)
