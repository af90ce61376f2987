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
from ._common import app_problems, as_port, check_host, listen_error, load, on_stop_signals, port_problems, stop_budget

logger = logging.getLogger(__name__)

#: The bean's context in the application: ``request.app[AIO_POD_CONTEXT]``.
AIO_POD_CONTEXT = web.AppKey("aio_pod_context", BeanContext)
#: How much sooner than the pod's STOP_WAIT_TIME aiohttp stops waiting for requests to finish.
GRACEFUL_MARGIN = 1.0
DEFAULT_PORT = 8080


class WebAdapter:
    """The bean: ``app`` served on ``host:port`` (TCP) and/or ``path`` (a unix socket).

    kwargs: ``host`` (127.0.0.1), ``port`` (8080), ``path``, ``ssl_context``, ``backlog``,
    ``shutdown_timeout`` (default: within STOP_WAIT_TIME), ``reuse_address``, ``reuse_port``,
    ``access_log`` (a logger, its name, or False for none), ``access_log_format``,
    ``access_log_class``; others go to ``web.AppRunner`` (``keepalive_timeout``...).
    """

    def __init__(self, context: BeanContext) -> None:
        self.context = context
        self.runner: web.AppRunner | None = None

    @classmethod
    def check_kwargs(cls, kwargs: Mapping[str, Any]) -> None:
        """Refuse a missing or unimportable app, or a bad port or path, before anything starts."""
        problems = check_host(kwargs) + port_problems(kwargs, ["port"])
        path = kwargs.get("path")
        if path is not None and not isinstance(path, str):
            problems.append(f"path: {path!r} must be the file name of a unix socket")
        ssl_context = kwargs.get("ssl_context")
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            problems.append(f"ssl_context: {ssl_context!r} is not an ssl.SSLContext")
        problems += app_problems(
            kwargs,
            "a web.Application or a factory",
            lambda app: isinstance(app, web.Application) or callable(app),
            "an aiohttp web.Application or a function returning one",
        )
        if problems:
            raise ConfigError(problems)

    async def __call__(
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
        self.check_kwargs({"app": app, "host": host, "port": port, "path": path, "ssl_context": ssl_context})
        application = await _application(load(app, "app"), app)
        application[AIO_POD_CONTEXT] = self.context
        with warnings.catch_warnings():
            # The seed's attribute; aiohttp discourages new attributes (a DeprecationWarning in its debug mode).
            warnings.simplefilter("ignore", DeprecationWarning)
            application.aio_pod_context = self.context
        if shutdown_timeout is None:
            shutdown_timeout = stop_budget(self.context, GRACEFUL_MARGIN)
        stopping = asyncio.Event()
        await on_stop_signals(self.context, lambda signal, **kwargs: stopping.set())
        runner = self.runner = web.AppRunner(
            application,
            handle_signals=False,
            shutdown_timeout=60.0 if shutdown_timeout is None else shutdown_timeout,
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
            await stopping.wait()
        finally:
            await runner.cleanup()
            if ("unix", path) in started:
                _remove_socket(str(path))


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
