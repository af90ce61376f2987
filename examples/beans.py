"""Beans of every kind, used by ``examples/kinds.py`` and the README."""

import asyncio

from aiopod import pass_context


async def hello_world(**kwargs):
    """Kind 2: a coroutine function, called with the bean's keyword arguments."""
    print("hello world!", kwargs, flush=True)


hello = hello_world(kind="coroutine object")  # kind 1: a coroutine object


class Ticker:
    """Kind 3: a class built with the context, then called with the keyword arguments."""

    def __init__(self, context):
        self.context = context
        self.stopping = asyncio.Event()

    async def __call__(self, interval=1.0, **kwargs):
        await self.context.add_signal_handler("SIGTERM", self.on_stop)
        await self.context.add_signal_handler("SIGINT", self.on_stop)
        ticks = 0
        while not self.stopping.is_set():
            ticks += 1
            print(f"{self.context.label}: tick {ticks} (greeting {self.context.config.GREETING!r})", flush=True)
            try:
                await asyncio.wait_for(self.stopping.wait(), interval)
            except TimeoutError:
                pass
        print(f"{self.context.label}: stopped after {ticks} ticks", flush=True)

    def on_stop(self, signal, **kwargs):
        self.stopping.set()


@pass_context(label="greeter")
async def greeter(context, name="world", **kwargs):
    """Kind 4: an @pass_context function gets the context first."""

    async def greet(signal, who=name, **kw):
        return f"{context.config.GREETING}, {who}!"

    await context.add_signal_handler("greet", greet)
    results = await context.send_signal("greet", labels=["greeter"], who="pod")
    print("greeter heard:", [r.value for r in results], flush=True)
