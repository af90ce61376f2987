"""Every pod's console socket: the ``CONSOLE_SOCKET`` setting and the server's life beside ``run_pod``.

Stdlib only at import: ``aiopod run`` serves the socket without importing ptpython.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..pod import ConfigError, Pod, PodConfig
from .sockets import ConsoleSocketError, default_socket_path

logger = logging.getLogger("aiopod.console")

#: ``CONSOLE_SOCKET`` when neither the config, the environment nor an option sets it.
DEFAULT = "default"
_OFF = {"none", "off", "no", "false", "0", ""}


def socket_setting(settings: PodConfig) -> Path | None:
    """The socket path ``CONSOLE_SOCKET`` asks for (None: no console socket)."""
    value: Any = settings.config.get("CONSOLE_SOCKET", DEFAULT)
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        where = settings.path or "config"
        raise ConfigError(
            f"{where}: CONSOLE_SOCKET {value!r} is not a path; give a path such as '/run/app/pod.sock', "
            "or None for no console socket"
        )
    if value.strip().lower() in _OFF:
        return None
    if value == DEFAULT:
        return default_socket_path()
    return Path(value).expanduser().absolute()


def pod_name(settings: PodConfig) -> str:
    """The config file's name (``demo`` for ``demo.py``), else the first bean's label or core."""
    if settings.path is not None:
        return settings.path.stem
    if settings.beans:
        first = settings.beans[0]
        return first.label or first.core
    return "pod"


@contextlib.contextmanager
def console_socket(settings: PodConfig) -> Iterator[Callable[[Pod], None] | None]:
    """A ``setup`` for ``run_pod`` that serves the pod's console socket; removed on leaving.

    ``SocketInUse`` (from ``setup``) when a live pod already serves the path.
    """
    path = socket_setting(settings)
    if path is None:
        yield None
        return
    from .session import RemoteConsole

    asked = path != default_socket_path()
    servers: list[RemoteConsole] = []

    def setup(pod: Pod) -> None:
        server = RemoteConsole(pod, path, name=pod_name(settings))
        try:
            server.start()
        except ConsoleSocketError as exc:
            if asked:
                raise
            # The default place is a convenience: a pod does not refuse to run without it.
            logger.warning("console socket: %s; this pod serves none (choose one with --console-socket PATH)",
                           exc.strerror)  # fmt: skip
            return
        servers.append(server)

    try:
        yield setup
    finally:
        for server in servers:
            server.close()
