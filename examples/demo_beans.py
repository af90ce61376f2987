"""Beans for the demo console (``examples/demo.py``)."""

import asyncio
import random

from aiopod import pass_context


async def stop_event(context):
    """An event set when the pod stops (SIGINT/SIGTERM reach every bean's handlers)."""
    stopping = asyncio.Event()
    for name in ("SIGINT", "SIGTERM"):
        await context.add_signal_handler(name, lambda **kw: stopping.set())
    return stopping


class Counter:
    """Counts quietly; look at it with ``bean('counter').instance.count``."""

    def __init__(self, context):
        self.context = context
        self.count = 0

    async def __call__(self, interval=0.1, **kwargs):
        stopping = await stop_event(self.context)
        while not stopping.is_set():
            self.count += 1
            await asyncio.sleep(interval)


@pass_context(label="greeter")
async def greeter(context, greeting="Hello", **kwargs):
    """Answers the "greet" signal: ``await signal("greet", "greeter", who="you")``."""

    def greet(signal, who="world", **kw):
        return f"{greeting}, {who}!"

    await context.add_signal_handler("greet", greet)
    await (await stop_event(context)).wait()


@pass_context
async def flaky(context, failure_rate=0.5, **kwargs):
    """Fails now and then; its restart policy starts it again (see the restarts in ps())."""
    stopping = await stop_event(context)
    while not stopping.is_set():
        try:
            await asyncio.wait_for(stopping.wait(), 2)
        except TimeoutError:
            if random.random() < failure_rate:
                raise RuntimeError("flaky bean failed, as it does") from None
