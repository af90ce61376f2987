"""One producer, many consumers, a bounded queue between them, and a stop that loses nothing.

::

    from aiopod.contrib.pcflow import Server

    class Crawl(Server):
        async def produce(self, **kwargs):
            while not self.stopping:
                yield await next_url()

        async def consume(self, url, **kwargs):
            await fetch(url)

    BEANS = [{"core": "crawl.Crawl", "consumer_num": 10, "queue_size": 10}]

Every item the producer yields is consumed exactly once. On SIGINT/SIGTERM the flow
stops pulling from the producer (a pull waiting for the producer's next item is
cancelled inside the producer, before it yields), then the queue drains and the
consumers finish. A ``consume`` that raises is logged with its item; the flow goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..pod import ConfigError
from ._common import maybe_await
from .simple import Server as SimpleServer

logger = logging.getLogger(__name__)

_END = object()  # tells a consumer that no more items will come


class Server(SimpleServer):
    """A producer-consumer bean: write ``produce`` (an async generator) and ``consume``.

    Keyword arguments: ``consumer_num`` (default 10) and ``queue_size`` (default 10);
    all of them are passed on to ``produce`` and ``consume`` too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.produced = 0
        self.consumed = 0
        self.failed = 0
        self._pulling = False
        self._producer: asyncio.Task[None] | None = None

    @classmethod
    def check_kwargs(cls, kwargs: Mapping[str, Any]) -> None:
        """Refuse a ``consumer_num`` below 1 or a ``queue_size`` that is not a number, before anything starts."""
        problems = []
        for name, least in (("consumer_num", 1), ("queue_size", 0)):
            value = kwargs.get(name, 10)
            try:
                ok = int(value) >= least and not isinstance(value, bool)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                problems.append(f"{name}: {value!r} must be a whole number >= {least}")
        if problems:
            raise ConfigError(problems)

    def produce(self, **kwargs: Any) -> AsyncIterator[Any]:
        """Yield the items to consume; return to end the flow."""
        raise NotImplementedError(f"{type(self).__qualname__} must define 'async def produce(self, **kwargs)'")

    def consume(self, obj: Any, **kwargs: Any) -> Any:
        """Handle one item (``def`` or ``async def``)."""

    async def run(self, **kwargs: Any) -> None:
        self.check_kwargs(kwargs)
        consumer_num = int(kwargs.get("consumer_num", 10))
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=int(kwargs.get("queue_size", 10)))
        name = self.context.label or f"bean#{self.context.id}"
        consumers = [
            asyncio.create_task(self._consumer(queue, kwargs), name=f"{name}:consumer-{n}") for n in range(consumer_num)
        ]
        self._producer = asyncio.create_task(self._produce(queue, kwargs), name=f"{name}:producer")
        watcher = asyncio.create_task(self._watch_stop())
        try:
            await asyncio.wait({self._producer})
            for _ in consumers:
                await queue.put(_END)
            await asyncio.wait(consumers)
            error = None if self._producer.cancelled() else self._producer.exception()
            if error is not None:
                raise error  # the producer failed: what it yielded before was still consumed
        finally:
            tasks = [task for task in (watcher, self._producer, *consumers) if not task.done()]
            for task in tasks:
                task.cancel()
            lost = sum(1 for item in _drain(queue) if item is not _END)
            if lost:
                logger.warning("%s: %d items taken from the producer were not consumed", name, lost)
            if tasks:
                await asyncio.wait(tasks)

    async def _produce(self, queue: asyncio.Queue[Any], kwargs: dict[str, Any]) -> None:
        items = self.produce(**kwargs)
        try:
            while not self._stop_requested.is_set():
                self._pulling = True
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if not self._stop_requested.is_set():
                        raise
                    # _watch_stop's cancel, inside the producer before it yielded: taken in
                    # hand, so that the producer's own cleanup is not seen as cancelled.
                    task = asyncio.current_task()
                    if task is not None:
                        task.uncancel()
                    return
                finally:
                    self._pulling = False
                self.produced += 1
                await queue.put(item)  # never cancelled on stop: the item was taken
        finally:
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _watch_stop(self) -> None:
        """On stop, stop pulling: cancel a pull that waits in the producer (not a put)."""
        await self._stop_requested.wait()
        if self._pulling and self._producer is not None:
            self._producer.cancel()

    async def _consumer(self, queue: asyncio.Queue[Any], kwargs: dict[str, Any]) -> None:
        while True:
            item = await queue.get()
            if item is _END:
                return
            try:
                await maybe_await(self.consume(item, **kwargs))
            except Exception:
                self.failed += 1
                logger.exception("%s.consume(%r) failed; the flow goes on", type(self).__qualname__, item)
            else:
                self.consumed += 1


def _drain(queue: asyncio.Queue[Any]) -> list[Any]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


__all__ = ["Server"]
