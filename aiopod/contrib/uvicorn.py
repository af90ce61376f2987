"""Serve an ASGI application with uvicorn inside the pod (``pip install aiopod[uvicorn]``).

::

    BEANS = [{"core": "aiopod.contrib.uvicorn.UvicornAdapter", "app": "myapp:app", "port": 8000}]

Every other key is a ``uvicorn.Config`` option. The pod, not uvicorn, owns SIGINT and
SIGTERM: on either, uvicorn stops accepting, finishes its requests and runs the
lifespan shutdown within STOP_WAIT_TIME. The app gets the bean's context as
``app.aio_pod_context``. uvicorn logs through the pod's logging unless ``log_config`` is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
from collections.abc import Generator, Mapping
from typing import Any

import uvicorn

from ..pod import AiopodError, BeanContext, ConfigError
from ._common import (
    STOP_MARGIN,
    app_problems,
    as_port,
    check_host,
    listen_error,
    load,
    on_stop_signals,
    port_problems,
    stop_budget,
)

logger = logging.getLogger(__name__)

#: The keyword arguments ``uvicorn.Config`` takes, besides ``app``.
CONFIG_OPTIONS = frozenset(inspect.signature(uvicorn.Config).parameters) - {"app"}
#: Options that need a process of their own, which a bean does not have.
UNSUPPORTED = {
    "reload": "a bean cannot restart its process; use the console's reload() instead",
    "workers": "one pod runs one server; run several pods behind a load balancer instead",
}
#: How much sooner than the pod's STOP_WAIT_TIME uvicorn stops waiting for requests to finish.
GRACEFUL_MARGIN = 1.0


class PodServer(uvicorn.Server):
    """``uvicorn.Server`` that leaves process signals to the pod (they reach it as ``should_exit``)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # uvicorn >= 0.29 swaps in its own SIGINT/SIGTERM handlers while it serves, then
        # re-raises the signals it caught: the pod's handlers would be bypassed and a
        # stopped pod killed by its own signal. https://github.com/encode/uvicorn/pull/1600
        yield

    def install_signal_handlers(self) -> None:
        """uvicorn < 0.29 installed its handlers here; the pod owns them."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            for server in self.servers:
                for sock in server.sockets:
                    logger.info("uvicorn running on %s", _url(sock, self.config.is_ssl))


class UvicornAdapter:
    """The bean: ``app`` (an ASGI app or its import string) plus ``uvicorn.Config`` options."""

    def __init__(self, context: BeanContext) -> None:
        self.context = context
        self.server: PodServer | None = None

    @classmethod
    def check_kwargs(cls, kwargs: Mapping[str, Any]) -> None:
        """Refuse a missing or unimportable app, a bad port and unknown options before anything starts."""
        problems = check_host(kwargs) + port_problems(kwargs, ["port"])
        what = "an app factory" if kwargs.get("factory") else "an ASGI application"
        problems += app_problems(kwargs, "an ASGI application", callable, f"{what} (a callable)")
        for name in sorted(set(kwargs) - CONFIG_OPTIONS - {"app"}):
            problems.append(f"{name}: not a uvicorn.Config option (check the spelling)")
        if kwargs.get("reload"):
            problems.append(f"reload: not supported in a pod: {UNSUPPORTED['reload']}")
        if kwargs.get("workers") not in (None, 1):
            problems.append(f"workers: not supported in a pod: {UNSUPPORTED['workers']}")
        if problems:
            raise ConfigError(problems)

    async def __call__(self, app: Any, **options: Any) -> None:
        self.check_kwargs({"app": app, **options})
        application = load(app, "app")
        if options.pop("factory", False):
            application = application()
        _attach(application, self.context)
        options.setdefault("log_config", None)  # uvicorn's dictConfig would take over the pod's log handlers
        graceful = stop_budget(self.context, GRACEFUL_MARGIN)
        if graceful is not None:
            options.setdefault("timeout_graceful_shutdown", graceful)
        host = options.setdefault("host", "127.0.0.1")
        port = options["port"] = as_port(options.get("port", 8000))
        config = uvicorn.Config(application, **options)
        server = self.server = PodServer(config)
        loop = asyncio.get_running_loop()
        force: asyncio.TimerHandle | None = None

        def on_stop(signal: str, **kwargs: Any) -> None:
            nonlocal force
            server.should_exit = True
            budget = stop_budget(self.context, STOP_MARGIN)
            if force is None and budget is not None:
                force = loop.call_later(budget, _force_exit, server)

        await on_stop_signals(self.context, on_stop)
        sockets: list[socket.socket] | None = None
        try:
            if config.uds is None and config.fd is None:
                # Bound here rather than by uvicorn, which calls sys.exit() when the port is taken.
                sockets = [_bind(host, port)]
            await server.serve(sockets=sockets)
        except SystemExit as exc:  # uvicorn's way of failing to start (lifespan startup, app loading)
            raise AiopodError(
                f"uvicorn could not start {app!r} (exit status {exc.code}); see its error above"
            ) from None
        except asyncio.CancelledError:
            _abort(server)
            raise
        finally:
            if force is not None:
                force.cancel()
            for sock in sockets or ():
                sock.close()


def _attach(app: Any, context: BeanContext) -> None:
    """``app.aio_pod_context = context``, as the seed did; said in the log when the app refuses it."""
    try:
        app.aio_pod_context = context
    except (AttributeError, TypeError):
        logger.warning("cannot set aio_pod_context on %r (it takes no new attributes)", app)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it Nagle holds uvicorn's body write for a delayed ACK (40 ms a request).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise listen_error("uvicorn", host, port, exc) from None
    return sock


def _force_exit(server: uvicorn.Server) -> None:
    if not server.force_exit:
        logger.warning("uvicorn: requests still running at the end of STOP_WAIT_TIME; closing them")
        server.force_exit = True


def _abort(server: uvicorn.Server) -> None:
    """The bean was cancelled mid-serve: stop listening and drop the connections now."""
    server.should_exit = server.force_exit = True
    for listener in getattr(server, "servers", ()):
        listener.close()
    for connection in list(server.server_state.connections):
        connection.shutdown()


def _url(sock: socket.socket, ssl: bool) -> str:
    address = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix socket {address}"
    host = f"[{address[0]}]" if sock.family == socket.AF_INET6 else address[0]
    return f"{'https' if ssl else 'http'}://{host}:{address[1]}"


__all__ = ["PodServer", "UvicornAdapter"]
