"""One producer, many consumers, a bounded queue between them, and a stop that loses nothing.

::

    from aiopod.contrib.pcflow import Server

    class Crawl(Server):
        async def produce(self, **kwargs):
            while not self.stopping:
                yield await next_url()

        async def consume(self, url, **kwargs):
            await fetch(url)

        async def on_unconsumed(self, urls, **kwargs):
            await requeue(urls)  # taken from the producer, not consumed before the stop's time ran out

    BEANS = [{"core": "crawl.Crawl", "consumer_num": 10, "queue_size": 10}]

Every item the producer yields is either consumed once or handed to ``on_unconsumed``.
On SIGINT/SIGTERM the flow stops pulling from the producer (a pull waiting for the
producer's next item is cancelled inside the producer, before it yields), then the
queue drains and the consumers finish. When the drain would outlast STOP_WAIT_TIME, the
flow stops it ``STOP_RESERVE`` seconds (at most a quarter of STOP_WAIT_TIME) before the
pod would cancel the bean: the consumers are cancelled, and every item not consumed
(queued, being consumed, or held by the producer) goes to ``on_unconsumed`` once. A
``consume`` that raises anything (``CancelledError`` included) other than its own
cancellation at the stop is logged with its item, and its consumer goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ._common import maybe_await, whole, whole_problems
from .adapter import STOP_RESERVE
from .simple import Server as SimpleServer

logger = logging.getLogger(__name__)

DEFAULTS = {"consumer_num": 10, "queue_size": 10}
LEAST = {"consumer_num": 1, "queue_size": 0}
#: The longest the flow waits for its cancelled consumers (and producer) to end.
CANCEL_WAIT = 1.0


class Server(SimpleServer):
    """A producer-consumer bean: write ``produce`` (an async generator) and ``consume``.

    Keyword arguments: ``consumer_num`` (default 10) and ``queue_size`` (default 10; 0 is
    unbounded); all of them are passed on to ``produce``, ``consume`` and
    ``on_unconsumed`` too. ``produced == consumed + failed + unconsumed`` when it ends.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.produced = 0
        self.consumed = 0
        self.failed = 0
        self.unconsumed = 0
        self._producer: asyncio.Task[None] | None = None
        self._pulling = False
        self._pull_cancelled = False
        self._held: tuple[Any, ...] = ()  # the item the producer waits to queue
        self._consuming: dict[asyncio.Task[None], Any] = {}

    @classmethod
    def kwargs_problems(cls, kwargs: Mapping[str, Any]) -> list[str]:
        """A ``consumer_num`` that is not a whole number >= 1, a ``queue_size`` not >= 0."""
        return whole_problems({**DEFAULTS, **kwargs}, LEAST)

    def produce(self, **kwargs: Any) -> AsyncIterator[Any]:
        """Yield the items to consume; return to end the flow."""
        raise NotImplementedError(f"{type(self).__qualname__} must define 'async def produce(self, **kwargs)'")

    def consume(self, obj: Any, **kwargs: Any) -> Any:
        """Handle one item (``def`` or ``async def``)."""

    def on_unconsumed(self, items: list[Any], **kwargs: Any) -> Any:
        """``items`` were taken from the producer and not consumed (the stop's time ran out, or
        the bean was cancelled): called once, roughly in the order they were produced. Those
        being consumed when it was cut short come first; they may have done part of their
        work. The default logs how many. ``def`` or ``async def``; with ``cleanup`` after it,
        it has at least half of ``STOP_RESERVE`` (scaled down when STOP_WAIT_TIME is under 4 s)."""
        logger.warning(
            "%s: %d items taken from the producer were not consumed (define on_unconsumed(self, items) to keep them)",
            self._name,
            len(items),
        )

    @property
    def _name(self) -> str:
        return self.context.label or f"bean#{self.context.id}"

    async def _run(self, kwargs: dict[str, Any]) -> None:
        await self.run(**kwargs)  # the flow keeps to the stop's time by itself, to save what is left

    async def run(self, **kwargs: Any) -> None:
        consumer_num = whole(kwargs.get("consumer_num", DEFAULTS["consumer_num"]))
        queue_size = whole(kwargs.get("queue_size", DEFAULTS["queue_size"]))
        if consumer_num is None or queue_size is None:  # check_kwargs refused these before start
            raise ValueError(self.kwargs_problems(kwargs))
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        consumers = [
            asyncio.create_task(self._consumer(queue, kwargs), name=f"{self._name}:consumer-{n}")
            for n in range(consumer_num)
        ]
        producer = self._producer = asyncio.create_task(self._produce(queue, kwargs), name=f"{self._name}:producer")
        watcher = asyncio.create_task(self._watch_stop())
        try:
            if await self.stop_request.within({producer}):
                joined = asyncio.ensure_future(queue.join())
                try:
                    await self.stop_request.within({joined})
                finally:
                    joined.cancel()
        finally:
            await self._end(queue, [watcher, producer, *consumers], kwargs)
        error = producer.exception() if producer.done() and not producer.cancelled() else None
        if error is not None:
            raise error  # the producer failed: what it yielded before was still consumed

    async def _produce(self, queue: asyncio.Queue[Any], kwargs: dict[str, Any]) -> None:
        items = self.produce(**kwargs)
        task = asyncio.current_task()
        assert task is not None
        try:
            while not self.stop_request:
                self._pulling = True
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if self._pull_cancelled and task.cancelling() == 1:
                        # _watch_stop's cancel, inside the producer before it yielded: taken in
                        # hand, so that the producer's own cleanup is not seen as cancelled.
                        task.uncancel()
                        return
                    if task.cancelling():
                        raise
                    raise RuntimeError(
                        f"{type(self).__qualname__}.produce() raised CancelledError though nothing cancelled it"
                    ) from None
                finally:
                    self._pulling = False
                self.produced += 1
                self._held = (item,)
                await queue.put(item)  # not cancelled on stop, only when the stop's time runs out
                self._held = ()
        finally:
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _watch_stop(self) -> None:
        """On stop, stop pulling: cancel a pull that waits in the producer (not a put)."""
        await self.stop_request.wait()
        if self._pulling and self._producer is not None:
            self._pull_cancelled = True
            self._producer.cancel()

    async def _consumer(self, queue: asyncio.Queue[Any], kwargs: dict[str, Any]) -> None:
        task = asyncio.current_task()
        assert task is not None
        while True:
            item = await queue.get()
            self._consuming[task] = item
            try:
                await maybe_await(self.consume(item, **kwargs))
            except asyncio.CancelledError:
                if task.cancelling():
                    raise  # its own cancellation (the stop's time ran out): the item is handed over
                self._failed(item)
            except Exception:
                self._failed(item)
            else:
                self.consumed += 1
            del self._consuming[task]
            queue.task_done()

    def _failed(self, item: Any) -> None:
        self.failed += 1
        logger.exception("%s.consume(%r) failed; the flow goes on", type(self).__qualname__, item)

    async def _end(self, queue: asyncio.Queue[Any], tasks: list[asyncio.Task[Any]], kwargs: dict[str, Any]) -> None:
        """Cancel what still runs, then hand every item not consumed to ``on_unconsumed``."""
        running = [task for task in tasks if not task.done()]
        for task in running:
            task.cancel()
        if running:
            # A moment at least, for the cancelled tasks to take their cancellation.
            await asyncio.wait(running, timeout=max(0.05, self.stop_request.bounded(CANCEL_WAIT, STOP_RESERVE / 2)))
        items = [*self._consuming.values(), *_drain(queue), *self._held]
        self._consuming.clear()
        self._held = ()
        if not items:
            return
        self.unconsumed += len(items)
        try:
            await maybe_await(self.on_unconsumed(items, **kwargs))
        except Exception:
            logger.exception("%s: on_unconsumed(%d items) failed", self._name, len(items))


def _drain(queue: asyncio.Queue[Any]) -> list[Any]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


__all__ = ["Server"]
