"""What a bean sees of its pod: ``BeanContext`` and the ``@pass_context`` decorator."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .bean import Bean
    from .config import Config
    from .pod import Pod
    from .signals import SignalResults

F = TypeVar("F", bound=Callable[..., Any])

#: Attribute set on functions decorated with ``@pass_context``; holds the default label.
PASS_CONTEXT = "__aiopod_pass_context__"
_NO_LABEL = ""


def pass_context(fn: F | None = None, *, label: str | None = None) -> Any:
    """Mark an async function as a bean that takes the context first: ``f(context, **kwargs)``.

    Use it bare (``@pass_context``) or with a default label (``@pass_context(label="app")``);
    a label given in the config wins over the decorator's.
    """

    def mark(f: F) -> F:
        if not inspect.iscoroutinefunction(f):
            raise TypeError(f"@pass_context needs an 'async def' function, got {f!r}")
        setattr(f, PASS_CONTEXT, label if label is not None else _NO_LABEL)
        return f

    return mark(fn) if fn is not None else mark


def default_label(obj: Any) -> str | None:
    """The label an object asks for through ``@pass_context(label=...)``, if any."""
    return getattr(obj, PASS_CONTEXT, None) or None


class BeanContext:
    """A bean's handle on its pod (the seed's names, kept).

    The console gets one too, with ``bean`` set to None.
    """

    __slots__ = ("bean", "pod")

    def __init__(self, pod: Pod, bean: Bean | None = None) -> None:
        self.pod = pod
        self.bean = bean

    @property
    def id(self) -> int | None:
        return self.bean.id if self.bean is not None else None

    @property
    def label(self) -> str | None:
        return self.bean.label if self.bean is not None else None

    @property
    def instance(self) -> Any:
        """The object built from a class bean (None for the other kinds)."""
        return self.bean.instance if self.bean is not None else None

    @property
    def config(self) -> Config:
        return self.pod.config

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.pod.loop

    def get_beans(self, id_or_label: int | str) -> list[Bean]:
        """The beans with this id or label; raises ``BeanNotFound`` naming what exists."""
        return self.pod.get_beans(id_or_label)

    async def wait_beans_done(self, id_or_label: int | str) -> None:
        """Wait until every bean with this id or label has ended."""
        await self.pod.wait_beans_done(id_or_label)

    async def add_signal_handler(self, sig: str, callback: Callable[..., Any]) -> None:
        """Call ``callback(signal=sig, **kwargs)`` whenever ``sig`` is sent to this bean."""
        self.pod.add_signal_handler(sig, callback, bean=self.bean)

    async def remove_signal_handler(self, sig: str, callback: Callable[..., Any]) -> bool:
        """Stop calling ``callback`` for ``sig``; returns whether it was registered."""
        return self.pod.remove_signal_handler(sig, callback, bean=self.bean)

    async def send_signal(self, sig: str, labels: str | Iterable[str] | None = None, **kwargs: Any) -> SignalResults:
        """Send ``sig`` to the handlers of every bean, or only of beans with these labels."""
        return await self.pod.send_signal(sig, labels=labels, **kwargs)

    def __repr__(self) -> str:
        who = self.bean.describe() if self.bean is not None else "console"
        return f"<BeanContext {who}>"
