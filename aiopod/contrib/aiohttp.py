"""Serve an aiohttp ``web.Application`` inside the pod (``pip install aiopod[aiohttp]``).

::

    BEANS = [{"core": "aiopod.contrib.aiohttp.WebAdapter", "app": "myapp:make_app", "port": 8080}]

``app`` is a ``web.Application``, a function (sync or async) that returns one, or the
import string of either. Handlers reach the pod through ``request.app[AIO_POD_CONTEXT]``
(aiohttp's typed key); ``request.app.aio_pod_context`` is set too, as in the seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import ssl
import stat
import warnings
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.log import access_logger
from aiohttp.web_log import AccessLogger

from ..pod import BeanContext, ConfigError
from ._common import app_problems, load, seconds_problems, whole_problems
from ._net import as_port, host_problems, listen_error, port_problems
from .adapter import STOP_RESERVE, Adapter

logger = logging.getLogger(__name__)

#: The bean's context in the application: ``request.app[AIO_POD_CONTEXT]``.
AIO_POD_CONTEXT = web.AppKey("aio_pod_context", BeanContext)
DEFAULT_PORT = 8080
#: How long requests may run on after a stop when STOP_WAIT_TIME is None (aiohttp's default).
NO_LIMIT_SHUTDOWN_TIMEOUT = 60.0


class WebAdapter(Adapter):
    """The bean: ``app`` served on ``host:port`` (TCP) and/or ``path`` (a unix socket).

    kwargs: ``host`` (127.0.0.1), ``port`` (8080), ``path``, ``ssl_context``, ``backlog``,
    ``shutdown_timeout`` (how long requests in flight at the stop may go on; at most
    STOP_WAIT_TIME less ``STOP_RESERVE``), ``reuse_address``, ``reuse_port``,
    ``access_log`` (a logger, its name, or False for none), ``access_log_format``,
    ``access_log_class``; others go to ``web.AppRunner`` (``keepalive_timeout``...).

    On the stop the sites stop accepting, idle connections close, ``on_shutdown`` runs;
    requests still running when their time is up are cancelled and answered
    ``503 Service Unavailable`` (those that had started their response are cut off), and
    then the app's ``on_cleanup`` runs, all within STOP_WAIT_TIME.
    """

    def __init__(self, context: BeanContext) -> None:
        super().__init__(context)
        self.runner: web.AppRunner | None = None
        self.requests = InFlight()

    @classmethod
    def kwargs_problems(cls, kwargs: Mapping[str, Any]) -> list[str]:
        """A missing or unimportable app, a bad host, port, path or ssl_context."""
        problems = host_problems(kwargs) + port_problems(kwargs, ["port"])
        path = kwargs.get("path")
        if path is not None and not isinstance(path, str):
            problems.append(f"path: {path!r} must be the file name of a unix socket")
        ssl_context = kwargs.get("ssl_context")
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            problems.append(f"ssl_context: {ssl_context!r} is not an ssl.SSLContext")
        problems += seconds_problems(kwargs, ["shutdown_timeout"]) + whole_problems(kwargs, {"backlog": 0})
        problems += app_problems(
            kwargs,
            "a web.Application or a factory",
            lambda app: isinstance(app, web.Application) or callable(app),
            "an aiohttp web.Application or a function returning one",
        )
        return problems

    async def serve(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int | str | None = None,
        path: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
        shutdown_timeout: float | None = None,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        access_log: logging.Logger | str | bool | None = True,
        access_log_format: str = AccessLogger.LOG_FORMAT,
        access_log_class: type[AbstractAccessLogger] = AccessLogger,
        **runner_options: Any,
    ) -> None:
        application = await _application(load(app, "app"), app)
        application[AIO_POD_CONTEXT] = self.context
        with warnings.catch_warnings():
            # The seed's attribute; aiohttp discourages new attributes (a DeprecationWarning in its debug mode).
            warnings.simplefilter("ignore", DeprecationWarning)
            application.aio_pod_context = self.context
        self.requests.install(application)
        wait = self.stop_request.stop_wait_time
        graceful = (
            shutdown_timeout if shutdown_timeout is not None else NO_LIMIT_SHUTDOWN_TIMEOUT if wait is None else wait
        )
        runner = self.runner = web.AppRunner(
            application,
            handle_signals=False,
            # aiohttp waits up to this for requests to end, then cancels them and waits as long
            # again (3.14); the adapter cuts them short before that (see InFlight), so this is
            # only the fallback for an app it could not install its middleware in.
            shutdown_timeout=graceful + STOP_RESERVE
            if self.requests.installed
            else self.stop_request.bounded(graceful) / 2,
            access_log=_access_logger(access_log),
            access_log_format=access_log_format,
            access_log_class=access_log_class,
            **runner_options,
        )
        await runner.setup()
        started: list[tuple[str, int | str]] = []
        try:
            tcp = {"reuse_address": reuse_address, "reuse_port": reuse_port}
            for site, where, what in _sites(runner, host, port, path, ssl_context, backlog, tcp):
                try:
                    await site.start()
                except OSError as exc:
                    raise listen_error("aiohttp", where, what, exc) from None
                started.append((where, what))
                logger.info("aiohttp running on %s", site.name)
            await self.stop_request.wait()
        finally:
            await self._cleanup(runner, graceful)
            if ("unix", path) in started:
                _remove_socket(str(path))

    async def _cleanup(self, runner: web.AppRunner, graceful: float) -> None:
        """``runner.cleanup()``, with the requests still running cut short in time for ``on_cleanup``."""
        cleanup = asyncio.ensure_future(runner.cleanup())
        try:
            done, _ = await asyncio.wait({cleanup}, timeout=self.stop_request.bounded(graceful))
        except asyncio.CancelledError:
            cleanup.cancel()
            raise
        if not done:
            cut = self.requests.cut()
            if cut:
                logger.warning(
                    "aiohttp: %d requests still running at the end of their time after %s; answering them 503 "
                    "so that the app's cleanup runs before STOP_WAIT_TIME ends",
                    cut,
                    self.stop_request.signal or "the stop",
                )
        await cleanup


class InFlight:
    """The requests an app is handling, so that a stop can cut them short (a middleware)."""

    def __init__(self) -> None:
        self.installed = False
        self._running: set[asyncio.Task[Any]] = set()
        self._prepared: set[asyncio.Task[Any]] = set()  # their response has started
        self._cut: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._running)

    def install(self, app: web.Application) -> None:
        """Put the middleware first in ``app`` (before it is frozen by the runner)."""
        if app.frozen:
            logger.warning(
                "aiohttp: the app is frozen already (did another runner start it?): requests still running "
                "at the stop cannot be answered 503; give a factory instead"
            )
            return
        app.middlewares.insert(0, self.middleware)
        app.on_response_prepare.append(self._on_prepare)
        self.installed = True

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except asyncio.CancelledError:
            if task not in self._cut or task.cancelling() != 1 or task in self._prepared:
                raise
            task.uncancel()  # the adapter's own cancel: answer instead of dropping the connection
            return web.Response(status=503, text="503: the server is stopping\n", headers={"Connection": "close"})
        finally:
            self._running.discard(task)
            self._prepared.discard(task)
            self._cut.discard(task)

    def cut(self) -> int:
        """Cancel every request still running; return how many."""
        running = [task for task in self._running if not task.done() and task not in self._cut]
        for task in running:
            self._cut.add(task)
            task.cancel(msg="aiopod: the pod is stopping and this request's time is up")
        return len(running)

    async def _on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        task = asyncio.current_task()
        if task in self._running:
            self._prepared.add(task)


def _sites(
    runner: web.AppRunner,
    host: str,
    port: int | str | None,
    path: str | None,
    ssl_context: ssl.SSLContext | None,
    backlog: int,
    tcp_options: dict[str, Any],
) -> list[tuple[web.BaseSite, str, int | str]]:
    """The sites to start, each with its address for errors: TCP unless only ``path`` is given."""
    sites: list[tuple[web.BaseSite, str, int | str]] = []
    if path is None or port is not None:
        tcp_port = as_port(DEFAULT_PORT if port is None else port)
        site = web.TCPSite(runner, host, tcp_port, ssl_context=ssl_context, backlog=backlog, **tcp_options)
        sites.append((site, host, tcp_port))
    if path is not None:
        sites.append((web.UnixSite(runner, path, ssl_context=ssl_context, backlog=backlog), "unix", path))
    return sites


async def _application(obj: Any, named: Any) -> web.Application:
    """The application itself, or what a (sync or async) factory returns."""
    app = obj if isinstance(obj, web.Application) else obj()
    if inspect.isawaitable(app):
        app = await app
    if not isinstance(app, web.Application):
        raise ConfigError(f"app: {named!r} returned a {type(app).__name__}, not an aiohttp web.Application")
    return app


def _remove_socket(path: str) -> None:
    """asyncio (before 3.13) leaves the unix socket file behind when its server closes."""
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)


def _access_logger(value: logging.Logger | str | bool | None) -> logging.Logger | None:
    if value is True:
        return access_logger
    if isinstance(value, str):
        return logging.getLogger(value)
    return value or None


__all__ = ["AIO_POD_CONTEXT", "WebAdapter"]
