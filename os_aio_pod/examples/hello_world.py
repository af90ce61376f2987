"""``os_aio_pod.examples.hello_world``: the seed's example class bean, as it behaved there.

aiopod has no example package; copy this class into your project (see ``examples/kinds.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiopod.pod import BeanContext

from .. import deprecated


class HelloWorld:
    """Prints a greeting and its keyword arguments, then sleeps a second (the seed's output)."""

    def __init__(self, context: BeanContext) -> None:
        self.context = context

    async def __call__(self, **kwargs: Any) -> None:
        print("hello world!")
        print("kwargs", kwargs)
        print("sleep 1s")
        await asyncio.sleep(1)


deprecated(__name__, "", "it is the seed's example; copy HelloWorld into your project")

__all__ = ["HelloWorld"]
