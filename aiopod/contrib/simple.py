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

import logging
from typing import Any

from ..pod import BeanContext, Config
from ._common import maybe_await
from .adapter import STOP_RESERVE, Adapter

logger = logging.getLogger(__name__)


class Server(Adapter):
    """A bean class with hooks: ``startup``, then ``run``, then ``cleanup``.

    ``on_stop`` runs once, when the pod stops on SIGINT or SIGTERM; the default one sets
    ``stopping``, which ``run`` can watch. A ``run`` still going ``STOP_RESERVE`` seconds
    (at most a quarter of STOP_WAIT_TIME) before the pod would cancel the bean is
    cancelled, so that ``cleanup`` has that time. ``cleanup`` runs after ``run`` whether it
    returned, raised or was cancelled (not when ``startup`` raised), and after a running
    ``on_stop`` has finished (or that time has come).
    """

    def __init__(self, context: BeanContext) -> None:
        super().__init__(context)
        self.stopping = False
        self.logger = logging.getLogger(type(self).__qualname__)

    @property
    def config(self) -> Config:
        """The pod's config (``context.config``)."""
        return self.context.config

    @property
    def stop_signal(self) -> str | None:
        """The signal that stopped the bean ("SIGINT" or "SIGTERM"), None until then."""
        return self.stop_request.signal

    def startup(self, **kwargs: Any) -> Any:
        """Prepare; called first."""

    def run(self, **kwargs: Any) -> Any:
        """Do the work; the bean ends when this returns."""

    def cleanup(self, **kwargs: Any) -> Any:
        """Release what ``startup`` and ``run`` took; called last, even when ``run`` fails."""

    def on_stop(self, **kwargs: Any) -> Any:
        """The pod is stopping (``kwargs['signal']`` says why): ask ``run`` to end."""
        self.stopping = True

    def on_stop_signal(self, signal: str, **kwargs: Any) -> Any:
        return self.on_stop(**{**kwargs, "signal": signal})

    async def serve(self, **kwargs: Any) -> None:
        await maybe_await(self.startup(**kwargs))
        try:
            await self._run(kwargs)
        finally:
            if self.stop_request:
                await self.stop_request.settled(self.stop_request.time_left(STOP_RESERVE / 2))
            await maybe_await(self.cleanup(**kwargs))

    async def _run(self, kwargs: dict[str, Any]) -> None:
        """``run``, cancelled when the stop's time is nearly up."""
        try:
            async with self.stop_request.cut_short() as cut:
                await maybe_await(self.run(**kwargs))
        except TimeoutError:
            if not cut.expired():
                raise
            logger.warning(
                "%s: run() was still going %.2f s before the end of STOP_WAIT_TIME; cancelled it so that "
                "cleanup() runs in time (let run() return once self.stopping is set)",
                self.context.label or f"bean #{self.context.id}",
                self.stop_request.time_left(0) or 0.0,
            )


__all__ = ["Server"]
