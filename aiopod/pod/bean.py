"""Beans: the records a pod keeps for each coroutine it runs."""

from __future__ import annotations

import asyncio
import enum
import gc
import inspect
import sys
import time
from collections.abc import Coroutine, Mapping
from itertools import repeat
from operator import is_
from types import FrameType, MappingProxyType
from typing import TYPE_CHECKING, Any

from .context import PASS_CONTEXT, BeanContext

if TYPE_CHECKING:
    from .pod import Pod
    from .supervision import RestartPolicy


class BeanState(enum.StrEnum):
    """Where a bean is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    RESTARTING = "restarting"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


ENDED = frozenset({BeanState.FINISHED, BeanState.FAILED, BeanState.CANCELLED})
# What the per-bean paths compare with: on Python 3.11 reading a member off an enum class
# goes through ``EnumType.__getattr__``'s slow lookup (~90 ns; a module global is ~15 ns),
# and a pod starting a bean per job reads several per bean (issue 14).
PENDING, RUNNING, RESTARTING = BeanState.PENDING, BeanState.RUNNING, BeanState.RESTARTING
FINISHED, FAILED, CANCELLED = BeanState.FINISHED, BeanState.FAILED, BeanState.CANCELLED
#: The kwargs of every bean that has none (one shared object, not an empty dict per bean).
NO_KWARGS: Mapping[str, Any] = MappingProxyType({})


class Kind(enum.StrEnum):
    """The four shapes of object a bean can be made of (the seed's, kept)."""

    COROUTINE = "coroutine object"
    FUNCTION = "coroutine function"
    CLASS = "class with async __call__"
    PASS_CONTEXT = "@pass_context function"


COROUTINE, FUNCTION, CLASS = Kind.COROUTINE, Kind.FUNCTION, Kind.CLASS


def classify(obj: Any) -> Kind:
    """Tell the four bean kinds apart: the one place that does it.

    Raises ``TypeError`` saying what ``obj`` is and what would be accepted.
    """
    if inspect.iscoroutine(obj):
        return Kind.COROUTINE
    if inspect.isclass(obj):
        if inspect.iscoroutinefunction(getattr(obj, "__call__", None)):  # noqa: B004
            return Kind.CLASS
        raise TypeError(
            f"class {obj.__qualname__} has no 'async def __call__(self, **kwargs)'; "
            "a bean class needs __init__(self, context) and an async __call__"
        )
    if inspect.iscoroutinefunction(obj):
        return Kind.PASS_CONTEXT if getattr(obj, PASS_CONTEXT, None) is not None else Kind.FUNCTION
    what = type(obj).__name__
    if inspect.isasyncgenfunction(obj):
        what = "an async generator function"
    elif callable(obj):
        what = "a plain (not async) " + ("function" if inspect.isfunction(obj) else "callable")
    raise TypeError(
        f"{what} is not a bean: give a coroutine function, a coroutine object, "
        "a class with 'async def __call__', or an @pass_context async function"
    )


class Bean:
    """One coroutine run by a pod, with its task and what happened to it.

    A plain record that owns its life: its state changes and its waiters are here, not in
    the pod. The task is an ordinary ``asyncio.Task`` the bean owns. A pod may hold 100k
    of them, so it keeps only what it needs (its context is made on first use).
    """

    __slots__ = (
        "__weakref__",
        "_context",
        "_waiters",
        "core",
        "ended_at",
        "exception",
        "id",
        "instance",
        "kind",
        "kwargs",
        "label",
        "obj",
        "pod",
        "restart",
        "restarts",
        "started_at",
        "state",
        "task",
    )

    def __init__(
        self,
        pod: Pod,
        id: int,
        obj: Any,
        core: str,
        kind: Kind,
        label: str | None,
        kwargs: Mapping[str, Any],
        restart: RestartPolicy | None = None,
    ) -> None:
        self.pod = pod
        self.id = id
        self.obj = obj
        self.core = core
        self.kind = kind
        self.label = label
        self.kwargs = kwargs or NO_KWARGS
        self.restart = restart
        self.state = PENDING
        self.restarts = 0
        self.exception: BaseException | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.instance: Any = None
        self.task: asyncio.Task[Any] | None = None
        self._context: BeanContext | None = None
        self._waiters: list[asyncio.Future[None]] | None = None

    @property
    def context(self) -> BeanContext:
        """What the bean sees of its pod (the same object every time)."""
        if self._context is None:
            self._context = BeanContext(self.pod, self)
        return self._context

    @property
    def runs_once(self) -> bool:
        """A coroutine-object bean can run only once: it cannot be restarted or reloaded."""
        return self.kind is COROUTINE

    def make_coroutine(self) -> Coroutine[Any, Any, Any]:
        """Build the coroutine to run for this bean, by kind."""
        kind = self.kind
        if kind is COROUTINE:
            if self.started_at is not None:
                raise RuntimeError(
                    f"bean {self.describe()} is a coroutine object, which can run only once; "
                    "give the coroutine function instead to run it again"
                )
            return self.obj  # type: ignore[no-any-return]
        if kind is FUNCTION:
            return self.obj(**self.kwargs) if self.kwargs else self.obj()  # type: ignore[no-any-return]
        if kind is CLASS:
            self.instance = self.obj(self.context)
            return self.instance(**self.kwargs)  # type: ignore[no-any-return]
        return self.obj(self.context, **self.kwargs)  # type: ignore[no-any-return]

    # -- state transitions (called by the pod's supervisor) ------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> asyncio.Task[Any]:
        """Enter ``running`` and start the task; an error building the coroutine is raised."""
        try:
            coro = self.make_coroutine()  # a coroutine-object bean knows it ran by its started_at
        finally:
            self.started_at, self.ended_at, self.state = time.time(), None, RUNNING
        task = self.task = loop.create_task(coro, name=f"bean#{self.id}")
        return task

    def stopped(self, exception: BaseException | None) -> None:
        """Its task has ended (for now: it may be restarted)."""
        self.ended_at = time.time()
        if exception is not None:
            self.exception = _unpinned(exception)

    def restarting(self) -> None:
        """Wait for a restart timer."""
        self.state = RESTARTING

    def end(self, state: BeanState, exception: BaseException | None = None) -> None:
        """Enter ``state`` (finished, failed or cancelled) for good, keeping the ``exception``
        its task ended with (if any), and wake the waiters."""
        self.state = state
        if self.ended_at is None:
            self.ended_at = time.time()
        if exception is not None:
            self.exception = _unpinned(exception)
        if self._waiters is not None:
            waiters, self._waiters = self._waiters, None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def dropped(self) -> None:
        """It has left the pod's history: let go of its context and instance, which point back at it.

        Without the cycle it is freed at once, with its task, rather than by the collector
        (a 100k-bean stop would leave it all to the interpreter's final collection: half a
        second; issue 15, item 9). Whoever still holds the bean gets a new context.
        """
        self._context = self.instance = None

    def revive(self) -> None:
        """Leave an end or a failure behind before a manual restart."""
        self.restarts += 1
        self.exception = None

    def discard(self) -> None:
        """Close a coroutine-object bean that never ran (without a "never awaited" warning)."""
        if self.kind is COROUTINE and self.started_at is None:
            self.obj.close()

    @property
    def ended(self) -> bool:
        """True once the bean has finished, failed or been cancelled for good."""
        return self.state in ENDED

    @property
    def uptime(self) -> float:
        """Seconds the bean has been running (or ran, once it has ended)."""
        if self.started_at is None:
            return 0.0
        return (self.ended_at or time.time()) - self.started_at

    def stack(self, limit: int | None = None) -> list[Any]:
        """The frames the bean's task is suspended in, outermost first (empty when not running)."""
        if self.task is None or self.task.done():
            return []
        return self.task.get_stack(limit=limit)

    async def wait(self) -> None:
        """Wait until the bean has ended for good (restarts included)."""
        if self.ended:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        await waiter

    def describe(self) -> str:
        """``#3 'web' (app.server:main)``: how logs and errors name a bean."""
        label = f" {self.label!r}" if self.label is not None else ""
        return f"#{self.id}{label} ({self.core})"

    def __repr__(self) -> str:
        label = f" label={self.label!r}" if self.label is not None else ""
        return f"<Bean #{self.id}{label} core={self.core!r} state={self.state.value} restarts={self.restarts}>"


def _unpinned(exception: BaseException) -> BaseException:
    """``exception`` with the locals of its traceback's frames (and its chain's) let go.

    A pod keeps the exceptions of ended beans for ``ps()``; without this each one would
    keep every object its frames referenced alive (issue 14). The traceback stays, so it
    still prints with file names, lines and code.
    """
    seen: set[int] = set()
    current: BaseException | None = exception
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            if _ended(frame):
                try:
                    frame.clear()
                except RuntimeError:  # still running after all
                    pass
            tb = tb.tb_next
        current = current.__cause__ or current.__context__
    return exception


_CLEAR_REFUSES_SUSPENDED = sys.version_info >= (3, 13)


def _ended(frame: FrameType) -> bool:
    """Whether ``frame`` has finished, so that clearing it only drops its locals.

    An exception can carry the frame of a task that caught it and goes on (a worker that
    hands its errors to futures). Before Python 3.13, ``frame.clear()`` on such a
    suspended coroutine's frame closes the coroutine; only a finished frame owns its
    code and locals, which the collector can see (``gc.get_referents``).
    """
    if _CLEAR_REFUSES_SUSPENDED:
        return True  # clear() refuses a suspended frame with RuntimeError
    return any(map(is_, gc.get_referents(frame), repeat(frame.f_code)))
