"""The supervisor: what happens when a bean's task ends (restart, fail, finish) and the log of it."""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .bean import CANCELLED, FAILED, FINISHED, PENDING, RESTARTING, Bean, Kind
from .config import resolve_core
from .errors import ConfigError, PodStateError
from .supervision import RestartBudget

if TYPE_CHECKING:
    from .registry import BeanRegistry
    from .signals import SignalHub

logger = logging.getLogger("aiopod")
#: What a bean raises to stop the pod (a tuple: ``A | B`` would make a union each time).
_FATAL = (SystemExit, KeyboardInterrupt)


class LogThrottle:
    """At most ``limit`` detailed lines per ``window`` seconds, then one summary line.

    A restart storm (thousands of beans failing fast) or a stop with thousands of beans
    refusing to end must not flood the log.
    """

    def __init__(self, logger: logging.Logger, what: str, limit: int = 20, window: float = 5.0) -> None:
        self.logger = logger
        self.what = what
        self.limit = limit
        self.window = window
        self._start = -window
        self._count = 0
        self._suppressed = 0
        self._flush: asyncio.TimerHandle | None = None

    def allow(self) -> bool:
        """Whether the next detailed line may be logged; counts the ones that may not."""
        now = time.monotonic()
        if now - self._start >= self.window:
            self._start, self._count = now, 0
        self._count += 1
        if self._count <= self.limit:
            return True
        self._suppressed += 1
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(self._start + self.window - now, self.summary)
        return False

    def summary(self) -> None:
        """Log how many lines were held back (also called when the pod stops)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self._suppressed:
            self.logger.warning(
                "%d more %s were not logged one by one (more than %d in %g s); see ps() or pod.beans",
                self._suppressed, self.what, self.limit, self.window,
            )  # fmt: skip
            self._suppressed = 0


class Supervisor:
    """Starts bean tasks, sees each one end, and decides: restart (with its timer), or end.

    It owns the restart decisions and their history, the restart timers, which beans were
    cancelled by hand or are being restarted by hand, the throttled failure log, and what
    the failures mean for the exit status.
    """

    def __init__(self, registry: BeanRegistry, signals: SignalHub, on_fatal: Callable[[], object]) -> None:
        self.registry = registry
        self.signals = signals
        self.on_fatal = on_fatal
        #: False once the pod stops: a bean that ends then is not started again.
        self.restarting = True
        #: Beans that failed for good and so make the exit status 1 (ended beans may leave
        #: the history, so this is counted, not looked up).
        self.failed = 0
        #: The status the first bean to call ``sys.exit(n)`` asked for (None: no bean did).
        self.exit_code: int | None = None
        self.log = LogThrottle(logger, "bean failures and restarts")
        self.loop: asyncio.AbstractEventLoop | None = None
        self._budgets: dict[int, RestartBudget] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._manual: set[int] = set()  # being restarted by restart()/reload()
        self._cancelled: set[int] = set()  # cancel() was asked: never restarted
        # The bean of each running task, for one shared done callback (not a closure per bean)
        # run in one shared context (add_done_callback would otherwise copy it per bean).
        self._tasks: dict[asyncio.Task[Any], Bean] = {}
        self._context = contextvars.copy_context()
        self._on_task_done = self._task_done  # one bound method, not one per bean

    def launch(self, bean: Bean) -> None:
        """Start ``bean``'s task; a bean whose coroutine cannot be made ends as it would have."""
        assert self.loop is not None
        try:
            task = bean.start(self.loop)
        except Exception as exc:
            self._done(bean, exc, False)
            return
        self._tasks[task] = bean
        task.add_done_callback(self._on_task_done, context=self._context)

    def cancel(self, bean: Bean) -> None:
        """End ``bean`` by hand: cancel its task, or its pending start, or its restart timer."""
        if bean.task is not None and not bean.task.done():
            self._cancelled.add(bean.id)
            bean.task.cancel()
        elif bean.state is PENDING:
            bean.discard()
            self.registry.ended(bean, CANCELLED, live=False)
        elif bean.state is RESTARTING:
            self._timers.pop(bean.id).cancel()
            self._budgets.pop(bean.id, None)
            self.registry.ended(bean, CANCELLED)

    def stop(self) -> None:
        """The pod is stopping: restart nothing more and end the beans waiting for a restart."""
        self.restarting = False
        for bean_id, timer in list(self._timers.items()):
            timer.cancel()
            del self._timers[bean_id]
            self.registry.ended(self.registry.get_one(bean_id), CANCELLED)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        bean = self._tasks.pop(task)
        if bean.task is not task:
            return
        cancelled = False
        try:
            exc = task.exception()
        except asyncio.CancelledError:
            # Retrieved, the CancelledError asyncio kept for this call is let go, and with its
            # traceback every frame the bean was in and their locals: a cycle back to the bean
            # (its context is a local) that only the collector would free, and not before the
            # bean leaves the history. Freed now, a file the bean left open is flushed and
            # closed now, and a 100k-bean stop leaves no garbage for the interpreter's final
            # collection (issue 15, item 9).
            cancelled, exc = True, None
        self._done(bean, exc, cancelled)

    def _done(self, bean: Bean, exc: BaseException | None, cancelled: bool) -> None:
        """Every end of a bean's task passes here: record it, log it, restart or end it."""
        if bean.id in self.signals.bean_ids:
            self.signals.forget(bean)  # a restarted bean registers its handlers again
        by_hand = False
        if self._cancelled:
            by_hand = bean.id in self._cancelled
            self._cancelled.discard(bean.id)
        if self._manual and bean.id in self._manual:
            bean.stopped(None)
            return  # restart()/reload() starts it again itself
        raised, exiting, fatal = exc, None, False
        if exc is not None and isinstance(exc, _FATAL):
            fatal = True  # the pod stops
            if isinstance(exc, SystemExit):  # sys.exit(n) in a bean: the pod then exits n
                code = exc.code
                exiting = 0 if code is None else code if isinstance(code, int) else 1
                if exiting == 0:
                    exc = None  # the bean itself ended well
        policy = bean.restart
        if policy is not None:
            if self.restarting and not fatal and not by_hand and policy.wants(exc is not None):
                bean.stopped(exc)
                self._schedule_restart(bean, exc)
                return
            self._budgets.pop(bean.id, None)
        if exc is None:
            self.registry.ended(bean, CANCELLED if cancelled else FINISHED)
        else:
            if exiting is None and self.log.allow():
                logger.error("bean %s failed", bean.describe(), exc_info=exc)
            if self.restarting or policy is None:
                # A bean with a restart policy failing once the stop has begun would have been
                # restarted: its failure does not make the stop's exit status depend on timing.
                self.failed += 1
            self.registry.ended(bean, FAILED, exc)
        if fatal:
            self._fatal(bean, raised, exiting)

    def _fatal(self, bean: Bean, exc: BaseException | None, exiting: int | None) -> None:
        """A bean raised ``SystemExit`` or ``KeyboardInterrupt``: the pod stops."""
        if exiting is not None and self.exit_code is None:
            self.exit_code = exiting
        if not self.restarting:
            return  # already stopping
        if exiting is not None:
            code = exc.code if isinstance(exc, SystemExit) else None
            logger.log(
                logging.ERROR if exiting else logging.INFO,
                "bean %s called sys.exit(%s): stopping the pod, which will exit with status %d",
                bean.describe(), "" if code is None else repr(code), self.exit_code,
            )  # fmt: skip
        else:
            logger.error("bean %s raised %s: stopping the pod", bean.describe(), type(exc).__name__)
        self.on_fatal()

    def _schedule_restart(self, bean: Bean, exc: BaseException | None) -> None:
        assert bean.restart is not None and self.loop is not None
        budget = self._budgets.get(bean.id)
        if budget is None:
            budget = self._budgets[bean.id] = RestartBudget(bean.restart)
        delay = budget.next_delay()
        policy = bean.restart
        if delay is None:
            if self.log.allow():
                if exc is not None:
                    logger.error("bean %s failed", bean.describe(), exc_info=exc)
                logger.error(
                    "bean %s %s %d times within %g s: giving up (restart max=%d)",
                    bean.describe(), "failed" if exc is not None else "ended", policy.max + 1, policy.window,
                    policy.max,
                )  # fmt: skip
            if bean.exception is None:
                bean.exception = RuntimeError(f"restart limit reached ({policy.max} in {policy.window:g} s)")
            del self._budgets[bean.id]
            self.failed += 1
            self.registry.ended(bean, FAILED)
            return
        if self.log.allow():
            if exc is not None:
                logger.error("bean %s failed", bean.describe(), exc_info=exc)
            logger.warning(
                "restarting %s (%d/%d) in %.1f s", bean.label or bean.describe(), len(budget.history), policy.max, delay
            )
        bean.restarting()
        self._timers[bean.id] = self.loop.call_later(delay, self._restart_now, bean)

    def _restart_now(self, bean: Bean) -> None:
        self._timers.pop(bean.id, None)
        bean.restarts += 1
        self.launch(bean)

    async def relaunch(self, beans: list[Bean], fresh: Mapping[int, tuple[Any, Any]], wait: float | None) -> None:
        """Stop ``beans`` (cancel, wait up to ``wait`` s) and start them again, on ``fresh`` objects if given."""
        for bean in beans:
            if bean.runs_once:
                raise PodStateError(f"bean {bean.describe()} is a coroutine object, which can run only once")
        tasks = [b.task for b in beans if b.task is not None and not b.task.done()]
        self._manual.update(b.id for b in beans)
        try:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=wait)
        finally:
            self._manual.difference_update(b.id for b in beans)
        for bean in beans:
            if bean.task is not None and not bean.task.done():
                raise PodStateError(f"bean {bean.describe()} did not stop within {wait} s; not restarted")
        for bean in beans:
            if bean.id in fresh:
                bean.obj, bean.kind = fresh[bean.id]
            timer = self._timers.pop(bean.id, None)
            if timer is not None:
                timer.cancel()
            self._budgets.pop(bean.id, None)
            if bean.ended:
                self.registry.started(bean)
            bean.revive()
            self.launch(bean)


def reimport(beans: list[Bean]) -> dict[int, tuple[Any, Kind]]:
    """Re-import the module of each bean's core; the new object and kind of each bean by id.

    If a module fails to import, ``ConfigError`` says why (and no bean has changed).
    """
    modules: dict[str, Any] = {}
    for bean in beans:
        name = _module_of(bean)
        if name not in modules:
            module = sys.modules[name]
            _drop_bytecode(module)
            try:
                modules[name] = importlib.reload(module)
            except SyntaxError as exc:
                raise ConfigError(f"{exc.filename}:{exc.lineno}: syntax error: {exc.msg}") from exc
            except Exception as exc:
                raise ConfigError(f"reloading {name!r} failed: {type(exc).__name__}: {exc}") from exc
    fresh: dict[int, tuple[Any, Kind]] = {}
    for bean in beans:
        obj, _, kind = resolve_core(bean.core)
        fresh[bean.id] = (obj, kind)
    return fresh


def _drop_bytecode(module: Any) -> None:
    """Remove a source module's cached bytecode, so that a reload compiles what the file says now.

    Python trusts ``__pycache__`` while the source's size and whole-second mtime match:
    an edit that keeps the size, saved within the second of the last compile, would
    reload the old code.
    """
    source, cached = getattr(module, "__file__", None), getattr(module, "__cached__", None)
    if isinstance(source, str) and source.endswith(".py") and isinstance(cached, str):
        try:
            os.unlink(cached)
        except OSError:  # none written, or a read-only folder: the import decides as before
            pass


def _module_of(bean: Bean) -> str:
    if bean.runs_once:
        raise PodStateError(f"bean {bean.describe()} is a coroutine object and cannot be reloaded")
    name = getattr(bean.obj, "__module__", None)
    if name is None or name not in sys.modules or name == "__main__":
        raise ConfigError(f"bean {bean.describe()}: its module {name!r} cannot be reloaded")
    return name  # type: ignore[no-any-return]
