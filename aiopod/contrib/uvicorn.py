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

from ..pod import AiopodError, BeanContext
from ._common import app_problems, load
from ._net import as_port, bind, host_problems, port_problems
from .adapter import STOP_RESERVE, Adapter

logger = logging.getLogger(__name__)

#: The keyword arguments ``uvicorn.Config`` takes, besides ``app``.
CONFIG_OPTIONS = frozenset(inspect.signature(uvicorn.Config).parameters) - {"app"}
#: Options that need a process of their own, which a bean does not have.
UNSUPPORTED = {
    "reload": "a bean cannot restart its process; use the console's reload() instead",
    "workers": "one pod runs one server; run several pods behind a load balancer instead",
}
#: uvicorn notices ``should_exit`` on its next tick and sleeps once before it waits for
#: requests: the part of the stop's time that goes to that.
TICKS = 0.25


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


class UvicornAdapter(Adapter):
    """The bean: ``app`` (an ASGI app or its import string) plus ``uvicorn.Config`` options.

    On the stop uvicorn stops accepting and waits for its requests: those still running
    ``STOP_RESERVE`` seconds (at most a quarter of STOP_WAIT_TIME) before the pod would
    cancel the bean are cancelled (uvicorn answers 500 when no response had started), or
    sooner with ``timeout_graceful_shutdown``; then the lifespan shutdown runs.
    """

    def __init__(self, context: BeanContext) -> None:
        super().__init__(context)
        self.server: PodServer | None = None

    @classmethod
    def kwargs_problems(cls, kwargs: Mapping[str, Any]) -> list[str]:
        """A missing or unimportable app, a bad host or port, unknown or unsupported options."""
        problems = host_problems(kwargs) + port_problems(kwargs, ["port"])
        what = "an app factory" if kwargs.get("factory") else "an ASGI application"
        problems += app_problems(kwargs, "an ASGI application", callable, f"{what} (a callable)")
        for name in sorted(set(kwargs) - CONFIG_OPTIONS - {"app"}):
            problems.append(f"{name}: not a uvicorn.Config option (check the spelling)")
        if kwargs.get("reload"):
            problems.append(f"reload: not supported in a pod: {UNSUPPORTED['reload']}")
        if kwargs.get("workers") not in (None, 1):
            problems.append(f"workers: not supported in a pod: {UNSUPPORTED['workers']}")
        return problems

    def on_stop_signal(self, signal: str, **kwargs: Any) -> None:
        server = self.server
        if server is None:
            return
        # uvicorn's graceful timeout counts from the start of its shutdown: what is left of
        # the stop's time then, so that the lifespan shutdown runs before the pod cancels.
        graceful = max(0.0, self.stop_request.bounded(float("inf")) - TICKS)
        if graceful != float("inf"):
            chosen = server.config.timeout_graceful_shutdown
            # uvicorn annotates it as int; it goes to asyncio.wait_for, which takes seconds as a float.
            server.config.timeout_graceful_shutdown = graceful if chosen is None else min(chosen, graceful)  # type: ignore[assignment]
        server.should_exit = True

    async def serve(self, app: Any, **options: Any) -> None:
        application = load(app, "app")
        if options.pop("factory", False):
            application = application()
        _attach(application, self.context)
        options.setdefault("log_config", None)  # uvicorn's dictConfig would take over the pod's log handlers
        host = options.setdefault("host", "127.0.0.1")
        port = options["port"] = as_port(options.get("port", 8000))
        config = uvicorn.Config(application, **options)
        server = self.server = PodServer(config)
        sockets: list[socket.socket] | None = None
        try:
            if config.uds is None and config.fd is None:
                # Bound here rather than by uvicorn, which calls sys.exit() when the port is taken.
                sockets = [bind("uvicorn", host, port)]
            await server.serve(sockets=sockets)
            # Requests cancelled at the end of the graceful time are still sending their 500.
            tasks = set(server.server_state.tasks)
            if tasks:
                await asyncio.wait(tasks, timeout=self.stop_request.bounded(1.0, STOP_RESERVE / 4))
        except SystemExit as exc:  # uvicorn's way of failing to start (lifespan startup, app loading)
            raise AiopodError(
                f"uvicorn could not start {app!r} (exit status {exc.code}); see its error above"
            ) from None
        except asyncio.CancelledError:
            _abort(server)
            raise
        finally:
            for sock in sockets or ():
                sock.close()


def _attach(app: Any, context: BeanContext) -> None:
    """``app.aio_pod_context = context``, as the seed did; said in the log when the app refuses it."""
    try:
        app.aio_pod_context = context
    except (AttributeError, TypeError):
        logger.warning("cannot set aio_pod_context on %r (it takes no new attributes)", app)


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
