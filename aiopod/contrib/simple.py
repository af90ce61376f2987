"""A scaffold for a server bean: ``startup``, ``run``, ``cleanup``, and ``on_stop`` on SIGINT/SIGTERM.

::

    from aiopod.contrib.simple import Server

    class Ticker(Server):
        async def startup(self, **kwargs): ...
        async def run(self, interval=1.0, **kwargs):
            while not self.stopping:
                await asyncio.sleep(interval)
        def cleanup(self, **kwargs): ...

Each hook may be ``def`` or ``async def`` and gets the bean's keyword arguments.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..pod import BeanContext, Config
from ._common import maybe_await, on_stop_signals


class Server:
    """A bean class with hooks: ``startup``, then ``run``, then ``cleanup``.

    ``on_stop`` runs once, when the pod stops on SIGINT or SIGTERM; the default one sets
    ``stopping``, which ``run`` can watch. ``cleanup`` runs after ``run`` whether it
    returned, raised or was cancelled (it does not run when ``startup`` raised), and
    after a running ``on_stop`` has finished.
    """

    def __init__(self, context: BeanContext) -> None:
        self.context = context
        self.stopping = False
        #: The signal that stopped the bean ("SIGINT" or "SIGTERM"), None until then.
        self.stop_signal: str | None = None
        self.logger = logging.getLogger(type(self).__qualname__)
        self._stop_requested = asyncio.Event()
        self._on_stop_task: asyncio.Future[Any] | None = None

    @property
    def config(self) -> Config:
        """The pod's config (``context.config``)."""
        return self.context.config

    def startup(self, **kwargs: Any) -> Any:
        """Prepare; called first."""

    def run(self, **kwargs: Any) -> Any:
        """Do the work; the bean ends when this returns."""

    def cleanup(self, **kwargs: Any) -> Any:
        """Release what ``startup`` and ``run`` took; called last, even when ``run`` fails."""

    def on_stop(self, **kwargs: Any) -> Any:
        """The pod is stopping (``kwargs['signal']`` says why): ask ``run`` to end."""
        self.stopping = True

    async def __call__(self, **kwargs: Any) -> None:
        await on_stop_signals(self.context, self._signalled(kwargs))
        await maybe_await(self.startup(**kwargs))
        try:
            await maybe_await(self.run(**kwargs))
        finally:
            if self._on_stop_task is not None and not self._on_stop_task.done():
                await asyncio.wait({self._on_stop_task})
            await maybe_await(self.cleanup(**kwargs))

    def _signalled(self, kwargs: dict[str, Any]) -> Any:
        def handler(signal: str, **ignored: Any) -> asyncio.Future[Any]:
            # Once per stop, however many stop signals come; every sender waits for the same run.
            if self._on_stop_task is None:
                self.stop_signal = signal
                self._stop_requested.set()
                self._on_stop_task = asyncio.ensure_future(maybe_await(self.on_stop(**{**kwargs, "signal": signal})))
            return self._on_stop_task

        return handler


__all__ = ["Server"]
