"""The shape every adapter has, and the one way adapters see the pod's stop.

An adapter is a bean class (the third bean kind: built with its context, then called
with its keyword arguments)::

    from aiopod.contrib.adapter import Adapter

    class Echo(Adapter):
        @classmethod
        def kwargs_problems(cls, kwargs):
            return [] if "port" in kwargs else ["port: missing; add 'port': 9000"]

        async def serve(self, port, **kwargs):
            server = await asyncio.start_server(..., port=port)
            await self.stop_request.wait()  # until SIGINT/SIGTERM
            server.close()

The pod calls ``check_kwargs`` (the shape ``aiopod.pod.ChecksKwargs`` declares) before the
bean starts, whichever way it came in (a config file, ``pod.add_bean()``, the console's
``add()``): every line ``kwargs_problems`` returns is a config error (exit status 2), and
``serve`` can trust its arguments.

``self.stop_request`` is the stop as the adapter sees it: whether it began, on which
signal, and how long is left before the pod cancels the bean. An adapter ends by itself
within that time, its application's cleanup included, so it keeps ``reserve`` seconds
back for the cleanup (``time_left``, ``deadline``, ``cut_short``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from ..pod import BeanContext, ChecksKwargs, ConfigError
from ._common import maybe_await

#: The pod sends these names to its beans when the process gets SIGINT or SIGTERM.
STOP_SIGNALS = ("SIGINT", "SIGTERM")
#: Seconds of STOP_WAIT_TIME an adapter keeps back by default: its work is cut short this
#: long before the pod would cancel the bean, so that cleanup still runs. Every reserve is
#: scaled down when STOP_WAIT_TIME is under 4 s, so that this one is a quarter of it.
STOP_RESERVE = 1.0


class StopRequest:
    """The pod's stop as one bean sees it: begun or not, its signal, and the time left.

    ``listen()`` registers for SIGINT and SIGTERM; the first of them sets ``signal`` and
    the deadline and runs the reaction once, however many stop signals follow.
    """

    def __init__(self, context: BeanContext) -> None:
        self.context = context
        #: "SIGINT" or "SIGTERM" once the pod stops; None until then.
        self.signal: str | None = None
        self._stop_at: float | None = None  # loop time at which the pod cancels the bean
        self._begun = asyncio.Event()
        self._react: Any = None
        self._reaction: asyncio.Future[Any] | None = None
        self._timeouts: list[tuple[asyncio.Timeout, float]] = []

    def __bool__(self) -> bool:
        return self._begun.is_set()

    @property
    def stop_wait_time(self) -> float | None:
        """The pod's STOP_WAIT_TIME in seconds; None when there is no limit."""
        wait = self.context.pod.stop_wait_time
        return wait if wait is not None and math.isfinite(wait) else None

    async def listen(self, react: Any = None) -> None:
        """Register for the stop; ``react(signal)`` (def or async def) then runs once.

        The pod waits for the reaction within STOP_WAIT_TIME, and logs it if it raises.
        """
        self._react = react
        for name in STOP_SIGNALS:
            await self.context.add_signal_handler(name, self._on_signal)

    async def wait(self) -> None:
        """Until the pod stops."""
        await self._begun.wait()

    async def settled(self, within: float | None = None) -> bool:
        """Until the reaction given to ``listen`` has finished, at most ``within`` seconds: True when it has.

        True at once when no stop has begun.
        """
        if self._reaction is None or self._reaction.done():
            return True
        done, _ = await asyncio.wait({self._reaction}, timeout=within)
        return bool(done)

    async def within(self, aws: Iterable[asyncio.Future[Any]], reserve: float = STOP_RESERVE) -> bool:
        """Wait for all of ``aws``; once the pod stops, only until ``deadline(reserve)``.

        True when they all finished (nothing is cancelled).
        """
        pending = {future for future in aws if not future.done()}
        if not pending:
            return True
        try:
            async with self.cut_short(reserve):
                await asyncio.wait(pending)
        except TimeoutError:
            return False
        return True

    def deadline(self, reserve: float = STOP_RESERVE) -> float | None:
        """Loop time to be done by: ``reserve`` seconds (scaled, see STOP_RESERVE) before the pod cancels the bean.

        None before a stop, and when STOP_WAIT_TIME is None (no limit).
        """
        if self._stop_at is None:
            return None
        return self._stop_at - self._reserve(reserve)

    def time_left(self, reserve: float = STOP_RESERVE) -> float | None:
        """Seconds left until ``deadline(reserve)`` (never below 0); before a stop, what a stop will give.

        None when STOP_WAIT_TIME is None.
        """
        wait = self.stop_wait_time
        if wait is None:
            return None
        deadline = self.deadline(reserve)
        if deadline is None:
            return max(0.0, wait - self._reserve(reserve))
        return max(0.0, deadline - asyncio.get_running_loop().time())

    def bounded(self, seconds: float, reserve: float = STOP_RESERVE) -> float:
        """``seconds``, or ``time_left(reserve)`` when that is shorter."""
        left = self.time_left(reserve)
        return seconds if left is None else min(seconds, left)

    @contextlib.asynccontextmanager
    async def cut_short(self, reserve: float = STOP_RESERVE) -> AsyncIterator[asyncio.Timeout]:
        """Cancel the block at ``deadline(reserve)`` once the pod stops; it then raises ``TimeoutError``.

        The ``asyncio.Timeout`` it gives says whether that happened (``expired()``).
        """
        async with asyncio.timeout_at(self.deadline(reserve)) as timeout:
            entry = (timeout, reserve)
            self._timeouts.append(entry)
            try:
                yield timeout
            finally:
                self._timeouts.remove(entry)

    def _reserve(self, reserve: float) -> float:
        """``reserve``, scaled down when STOP_WAIT_TIME is under 4 s (STOP_RESERVE is then a quarter of it)."""
        wait = self.stop_wait_time
        return reserve if wait is None else reserve * min(1.0, wait / 4 / STOP_RESERVE)

    def _on_signal(self, signal: str, **kwargs: Any) -> asyncio.Future[Any]:
        if self._reaction is None:
            self.signal = signal
            wait = self.stop_wait_time
            # The pod starts its STOP_WAIT_TIME just before it sends the signal to handlers.
            self._stop_at = None if wait is None else asyncio.get_running_loop().time() + wait
            self._begun.set()
            for timeout, reserve in self._timeouts:
                timeout.reschedule(self.deadline(reserve))
            self._reaction = asyncio.ensure_future(self._run_reaction(signal))
        return self._reaction

    async def _run_reaction(self, signal: str) -> Any:
        if self._react is not None:
            return await maybe_await(self._react(signal))
        return None


class Adapter:
    """The base class of adapter beans: ``kwargs_problems`` checked before start, then ``serve``.

    ``on_stop_signal`` runs once when the pod stops; ``self.stop_request`` tells the rest.
    """

    def __init__(self, context: BeanContext) -> None:
        self.context = context
        self.stop_request = StopRequest(context)

    @classmethod
    def kwargs_problems(cls, kwargs: Mapping[str, Any]) -> list[str]:
        """One line per problem in the bean's keyword arguments, each naming the key and the fix."""
        return []

    @classmethod
    def check_kwargs(cls, kwargs: Mapping[str, Any]) -> None:
        """Called by the pod before the bean starts: ``ConfigError`` listing ``kwargs_problems``."""
        problems = cls.kwargs_problems(kwargs)
        if problems:
            raise ConfigError(problems)

    async def __call__(self, **kwargs: Any) -> None:
        await self.stop_request.listen(lambda signal: self.on_stop_signal(signal, **kwargs))
        await self.serve(**kwargs)

    async def serve(self, *args: Any, **kwargs: Any) -> None:
        """Run until done, or until the stop (``await self.stop_request.wait()``)."""
        raise NotImplementedError(f"{type(self).__qualname__} must define 'async def serve(self, **kwargs)'")

    def on_stop_signal(self, signal: str, **kwargs: Any) -> Any:
        """The pod is stopping on ``signal``, called with the bean's kwargs (def or async def)."""


#: Every adapter class is the shape the pod calls before a bean starts (mypy checks this line).
_SHAPE: ChecksKwargs = Adapter

__all__ = ["STOP_RESERVE", "STOP_SIGNALS", "Adapter", "StopRequest"]
