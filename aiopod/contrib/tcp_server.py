"""An event-driven TCP server bean: subclass ``Server``, or give an ``asyncio.Protocol``.

::

    BEANS = [
        {
            "core": "aiopod.contrib.tcp_server.TCPServerAdapter",
            "port": 9399,
            "server": "echo.EchoServer",        # a tcp_server.Server subclass (the default: Server)
            # "protocol": "echo.EchoProtocol",  # or an asyncio.Protocol, which gets .server
        },
    ]

The hooks run in this order: ``on_setup``, listen, ``on_start``; for each connection
``on_connect(reader, writer)`` (the connection is closed when it returns); on
SIGINT/SIGTERM ``on_signal(name)`` and ``on_stop()``, then the listener closes, open
connections get ``shutdown_timeout`` seconds to end and are closed, and ``on_cleanup()``.
Every hook may be ``def`` or ``async def``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..pod import BeanContext, ConfigError
from ._common import load, maybe_await, seconds_problems, whole_problems
from ._net import as_port, host_problems, listen_error, port_problems
from .adapter import STOP_RESERVE, Adapter

logger = logging.getLogger(__name__)

DEFAULT_PORT = 9399  # the seed's
DEFAULT_LIMIT = 2**16  # asyncio's StreamReader buffer limit


@dataclass
class TCPConfig:
    """The adapter's settings as the server sees them; extra bean kwargs are in ``extra``."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    backlog: int = 100
    limit: int = DEFAULT_LIMIT
    shutdown_timeout: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not fields: the seed's config let extra kwargs be read as attributes.
        try:
            return self.__dict__["extra"][name]
        except KeyError:
            raise AttributeError(f"TCP server config has no {name!r}") from None


class Server:
    """The default TCP server: override the hooks you need (each may be sync or async)."""

    def __init__(self, context: BeanContext, config: TCPConfig) -> None:
        self.context = context
        self.config = config

    def on_setup(self) -> Any:
        """Before the server listens."""

    def on_start(self) -> Any:
        """The server listens."""

    def on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
        """Serve one connection (not called when a ``protocol`` is configured)."""

    def on_signal(self, sig: str) -> Any:
        """The pod got ``sig`` ("SIGINT" or "SIGTERM") and is stopping."""

    def on_stop(self) -> Any:
        """Called after ``on_signal``, before the listener and connections close."""

    def on_cleanup(self) -> Any:
        """Everything is closed."""


class TCPServerAdapter(Adapter):
    """The bean: listens on ``host:port`` and drives a ``Server`` (or a ``protocol``).

    kwargs: ``host`` (127.0.0.1), ``port`` (9399), ``backlog`` (100), ``limit`` (stream
    buffer, 64 KiB), ``shutdown_timeout`` (1 s, within STOP_WAIT_TIME), ``server`` and
    ``protocol`` (import strings or the objects); the others reach the server as ``config.extra``.
    """

    def __init__(self, context: BeanContext) -> None:
        super().__init__(context)
        self.server: Server | None = None
        self.listener: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._transports: set[asyncio.BaseTransport] = set()
        self._idle = asyncio.Event()  # set when no connection is open (while stopping)

    @classmethod
    def kwargs_problems(cls, kwargs: Mapping[str, Any]) -> list[str]:
        """A bad host or port, a server or protocol that cannot be imported or is of the wrong type."""
        problems = host_problems(kwargs) + port_problems(kwargs, ["port"])
        problems += whole_problems(kwargs, {"backlog": 0, "limit": 1}) + seconds_problems(kwargs, ["shutdown_timeout"])
        try:
            _server_factory(kwargs.get("server", Server))
        except ConfigError as exc:
            problems += exc.problems
        if kwargs.get("protocol") is not None:
            try:
                _protocol_class(kwargs["protocol"])
            except ConfigError as exc:
                problems += exc.problems
        return problems

    async def on_stop_signal(self, signal: str, **kwargs: Any) -> None:
        if self.server is not None:
            await maybe_await(self.server.on_signal(signal))
            await maybe_await(self.server.on_stop())

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int | str = DEFAULT_PORT,
        backlog: int = 100,
        limit: int = DEFAULT_LIMIT,
        shutdown_timeout: float = 1.0,
        server: Any = Server,
        protocol: Any = None,
        **extra: Any,
    ) -> None:
        config = TCPConfig(host, as_port(port), int(backlog), int(limit), float(shutdown_timeout), extra)
        tcp = self.server = _server_factory(server)(self.context, config)
        await maybe_await(tcp.on_setup())
        try:
            if protocol is None:
                listening = asyncio.start_server(self._connected, host, config.port, backlog=backlog, limit=limit)
            else:
                factory = _tracked(_protocol_class(protocol), tcp, self._transports, self._check_idle)
                listening = asyncio.get_running_loop().create_server(factory, host, config.port, backlog=backlog)
            try:
                self.listener = await listening
            except OSError as exc:
                raise listen_error("tcp server", host, config.port, exc) from None
            bound = self.listener.sockets[0].getsockname()
            logger.info("tcp server listening on %s:%s", bound[0], bound[1])
            await maybe_await(tcp.on_start())
            await self.stop_request.wait()
            await self.stop_request.settled(self.stop_request.time_left())  # on_signal and on_stop
        finally:
            await self._close(config.shutdown_timeout)
            await maybe_await(tcp.on_cleanup())

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None and self.server is not None
        self._handlers[task] = writer
        try:
            await maybe_await(self.server.on_connect(reader, writer))
        except asyncio.CancelledError:
            # Ended by the stop. Not re-raised: asyncio's start_server (3.11) calls
            # task.exception() on this task, which raises for a cancelled one and logs an error.
            pass
        except Exception:
            logger.exception("tcp server: on_connect for %s failed", writer.get_extra_info("peername"))
        finally:
            del self._handlers[task]
            writer.close()
            self._check_idle()

    def _check_idle(self) -> None:
        if not self._handlers and not self._transports:
            self._idle.set()

    async def _close(self, shutdown_timeout: float) -> None:
        """Close the listener, give connections ``shutdown_timeout`` to end, then close them."""
        if self.listener is not None:
            self.listener.close()
        timeout = self.stop_request.bounded(shutdown_timeout)
        self._idle.clear()
        self._check_idle()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            logger.info("tcp server: closing %d connections still open", len(self._handlers) + len(self._transports))
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        for transport in list(self._transports):
            transport.close()
        if handlers:
            await asyncio.wait(handlers, timeout=self.stop_request.bounded(1.0, STOP_RESERVE / 2))
        if self.listener is not None:
            await self.listener.wait_closed()


def _server_factory(value: Any) -> Callable[[BeanContext, TCPConfig], Server]:
    obj = load(value, "server")
    if isinstance(obj, type) and issubclass(obj, Server):
        return obj
    if isinstance(obj, Server):
        return lambda context, config: obj
    raise ConfigError(f"server: {value!r} is not a subclass of aiopod.contrib.tcp_server.Server")


def _protocol_class(value: Any) -> type[asyncio.BaseProtocol]:
    obj = load(value, "protocol")
    if isinstance(obj, type) and issubclass(obj, asyncio.BaseProtocol):
        return obj
    raise ConfigError(f"protocol: {value!r} is not an asyncio.Protocol class")


def _tracked(
    cls: type[asyncio.BaseProtocol],
    server: Server,
    transports: set[asyncio.BaseTransport],
    on_lost: Callable[[], None],
) -> Callable[[], asyncio.BaseProtocol]:
    """A subclass of ``cls`` whose instances have ``.server`` and whose connections the stop can close."""

    def connection_made(self: Any, transport: asyncio.BaseTransport) -> None:
        self._aiopod_transport = transport
        transports.add(transport)
        cls.connection_made(self, transport)

    def connection_lost(self: Any, exc: Exception | None) -> None:
        transports.discard(self._aiopod_transport)
        on_lost()
        cls.connection_lost(self, exc)

    namespace = {
        "server": server,  # a class attribute, so that __init__ can use it too
        "connection_made": connection_made,
        "connection_lost": connection_lost,
        "__qualname__": cls.__qualname__,
        "__module__": cls.__module__,
    }
    factory: Callable[[], asyncio.BaseProtocol] = type(cls.__name__, (cls,), namespace)
    return factory


__all__ = ["Server", "TCPConfig", "TCPServerAdapter"]
