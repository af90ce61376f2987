"""The pod: runs beans side by side on one loop, and stops them in a bounded way."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import importlib
import itertools
import logging
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

from ._collector import collector_paused
from .bean import NO_KWARGS, Bean, BeanState
from .config import RESERVED, BeanSpec, Config, check_kwargs, make_spec, read_config_file, resolve_core
from .context import BeanContext, default_label
from .errors import BeanNotFound, ConfigError, PodStateError
from .health import Health, LoopMonitor
from .signals import SignalHub, SignalResults
from .supervision import LogThrottle, RestartPolicy, parse_restart

logger = logging.getLogger("aiopod")

#: After cancelling, how long beans get to finish their cleanup before they count as refusing.
CANCEL_GRACE = 1.0
_RECANCEL_EVERY = 0.1

BeanRef = int | str | Bean


class Pod:
    """Beans by id and label, their signals, and the pod's life: run, then a bounded stop.

    ``keep_alive`` keeps the pod up with zero beans (the console); a headless pod ends
    when its last bean ends.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        stop_wait_time: float | None = 5.0,
        keep_alive: bool = False,
        block_threshold: float = 1.0,
    ) -> None:
        self.config = config if isinstance(config, Config) else Config(config)
        self.stop_wait_time = stop_wait_time
        self.keep_alive = keep_alive
        self.refused: list[Bean] = []
        self._beans: dict[int, Bean] = {}
        self._labels: dict[str, dict[int, Bean]] = {}
        self._ids = itertools.count(1)
        self._signals = SignalHub()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._phase = "new"  # new -> running -> stopping -> stopped
        self._live = 0  # beans started and not yet ended for good (restarting ones included)
        self._wake: asyncio.Event | None = None
        self._force: asyncio.Future[None] | None = None
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._restart_timers: dict[int, asyncio.TimerHandle] = {}
        self._manual: set[int] = set()  # beans being restarted by restart()/reload()
        self._cancelled: set[int] = set()  # beans cancel() was asked to end: never restarted
        self._stop_signal: str | None = None
        self._stop_listeners: list[Callable[[str], object]] = []
        self._start_listeners: list[Callable[[], object]] = []
        #: Asked first when SIGINT arrives; one that returns True has taken it (the
        #: console cancels its running statement) and the pod does not stop.
        self.interrupt_handlers: list[Callable[[], bool]] = []
        self.monitor = LoopMonitor(threshold=block_threshold)
        self._throttle = LogThrottle(logger)
        self._resolved: dict[int, tuple[Any, str, Any, bool]] = {}
        # The bean of each running task, for one shared done callback (not a closure per bean)
        # run in one shared context (add_done_callback would otherwise copy it per bean).
        self._tasks: dict[asyncio.Task[Any], Bean] = {}
        self._on_task_done = self._task_done
        self._callback_context = contextvars.copy_context()
        self._background: set[asyncio.Task[Any]] = set()

    # -- the beans ------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise PodStateError("the pod is not running yet, so it has no loop; use it from a bean")
        return self._loop

    @property
    def beans(self) -> list[Bean]:
        """Every bean this pod has had, in id order (ended ones included)."""
        return list(self._beans.values())

    @property
    def running(self) -> bool:
        return self._phase == "running"

    @property
    def stopping(self) -> bool:
        return self._phase in {"stopping", "stopped"} or self._stop_signal is not None

    def add_bean(self, obj: Any, label: str | None = None, *, restart: Any = None, **kwargs: Any) -> Bean:
        """Add a bean: queued before the pod runs, started at once while it runs (hot add).

        ``obj`` is one of the four bean kinds or an import string naming one.
        """
        if self.stopping:
            raise PodStateError("the pod is stopping; it takes no new beans")
        if label is not None and not isinstance(label, str):
            raise TypeError(f"label must be a string, got {label!r}")
        found, core, kind, checks = self._resolve(obj)
        if checks:
            problems = check_kwargs(found, kwargs, f"bean {core!r}")
            if problems:
                raise ConfigError(problems)
        policy = None if restart is None else parse_restart(restart)
        return self._add(found, core, kind, label if label is not None else default_label(found), kwargs, policy)

    def _resolve(self, obj: Any) -> tuple[Any, str, Any, bool]:
        """``resolve_core`` and whether the bean checks its kwargs, remembered for objects added
        again and again (never for strings or coroutines, which would be kept alive)."""
        known = self._resolved.get(id(obj))
        if known is not None and known[0] is obj:
            return known
        found, core, kind = resolve_core(obj)
        known = (found, core, kind, callable(getattr(found, "check_kwargs", None)))
        if not (isinstance(obj, str) or asyncio.iscoroutine(obj)):
            self._resolved[id(obj)] = known
        return known

    def add_spec(self, spec: BeanSpec) -> Bean:
        """Add a bean from a validated config entry."""
        if self.stopping:
            raise PodStateError("the pod is stopping; it takes no new beans")
        kwargs = dict(spec.kwargs) if spec.kwargs else NO_KWARGS  # the bean's own copy
        return self._add(spec.obj, spec.core, spec.kind, spec.label, kwargs, spec.restart)

    def _add(self, obj: Any, core: str, kind: Any, label: str | None, kwargs: Mapping[str, Any], policy: Any) -> Bean:
        if policy is not None:  # each bean keeps its own restart history
            policy = dataclasses.replace(policy, history=type(policy.history)())
        bean = Bean(self, next(self._ids), obj, core, kind, label, kwargs, policy)  # positional: 0.6 us less per bean
        self._beans[bean.id] = bean
        if label is not None:
            self._labels.setdefault(label, {})[bean.id] = bean
        if self._phase == "running":
            self._start(bean)
        return bean

    def get_beans(self, ref: BeanRef) -> list[Bean]:
        """The beans with this id or label (or this very bean); raises ``BeanNotFound``."""
        if isinstance(ref, Bean):
            if self._beans.get(ref.id) is ref:
                return [ref]
        elif isinstance(ref, int) and not isinstance(ref, bool):
            if ref in self._beans:
                return [self._beans[ref]]
        elif isinstance(ref, str):
            if ref in self._labels:
                return list(self._labels[ref].values())
            if ref.isdigit() and int(ref) in self._beans:
                return [self._beans[int(ref)]]
        raise BeanNotFound(self._not_found(ref))

    def _not_found(self, ref: object) -> str:
        what = f"id {ref}" if isinstance(ref, int) else f"label {ref!r}" if isinstance(ref, str) else repr(ref)
        if not self._beans:
            return f"no bean with {what}: the pod has no beans"
        labels = sorted(self._labels)
        shown = ", ".join(repr(label) for label in labels[:20]) + (" ..." if len(labels) > 20 else "")
        ids = f"ids {min(self._beans)}-{max(self._beans)}" if len(self._beans) > 1 else f"id {min(self._beans)}"
        return f"no bean with {what}; there are {ids}" + (f" and labels {shown}" if labels else " and no labels")

    def get_bean(self, ref: BeanRef) -> Bean:
        """The one bean with this id or label; ``BeanNotFound`` if none, ``LookupError`` if several."""
        beans = self.get_beans(ref)
        if len(beans) > 1:
            ids = ", ".join(str(b.id) for b in beans)
            raise LookupError(f"{len(beans)} beans have label {ref!r} (ids {ids}); ask for one by id")
        return beans[0]

    def cancel(self, ref: BeanRef) -> list[Bean]:
        """Cancel the beans with this id or label; returns them."""
        beans = self.get_beans(ref)
        for bean in beans:
            if bean.task is not None and not bean.task.done():
                self._cancelled.add(bean.id)
                bean.task.cancel()
            elif bean.state is BeanState.PENDING:
                self._close_unstarted(bean)
                bean.state = BeanState.CANCELLED
            elif bean.state is BeanState.RESTARTING:
                self._restart_timers.pop(bean.id).cancel()
                self._ended(bean, BeanState.CANCELLED)
        return beans

    async def wait_beans_done(self, ref: BeanRef) -> None:
        """Wait until every bean with this id or label has ended for good."""
        await asyncio.gather(*(bean.wait() for bean in self.get_beans(ref)))

    # -- signals --------------------------------------------------------------------

    def add_signal_handler(self, sig: str, handler: Callable[..., Any], *, bean: Bean | None = None) -> None:
        """Call ``handler(signal=sig, **kwargs)`` when ``sig`` is sent (to ``bean``'s label)."""
        self._signals.add(sig, handler, bean)

    def remove_signal_handler(self, sig: str, handler: Callable[..., Any], *, bean: Bean | None = None) -> bool:
        return self._signals.remove(sig, handler, bean)

    async def send_signal(self, sig: str, labels: str | Iterable[str] | None = None, **kwargs: Any) -> SignalResults:
        """Run the handlers for ``sig`` (only those of beans with ``labels``, if given)."""
        return await self._signals.send(sig, labels, **kwargs)

    # -- running --------------------------------------------------------------------

    async def run(self) -> int:
        """Start the beans and run until they all end (headless) or a stop; return the exit status."""
        if self._phase != "new":
            raise PodStateError("this pod has already run; make a new Pod")
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._force = self._loop.create_future()
        self._phase = "running"
        self.monitor.start(self._loop)
        with collector_paused(len(self._beans)):  # what is made here lives on: tracing it is wasted
            pending = [bean for bean in self._beans.values() if bean.state is BeanState.PENDING]
            self._live += len(pending)
            for bean in pending:
                self._launch(bean)
        for listener in self._start_listeners:
            listener()
        if self._stop_signal is None and (self.keep_alive or self._live):
            await self._wake.wait()
        await self._shutdown()
        return self.exit_status

    @property
    def exit_status(self) -> int:
        """1 when a bean failed or refused to stop, else 0."""
        failed = any(bean.state is BeanState.FAILED for bean in self._beans.values())
        return 1 if failed or self.refused else 0

    def health(self) -> Health:
        """Loop lag now and at worst, and whether the loop is blocked right now."""
        return self.monitor.health()

    def stop(self, signal: str = "SIGTERM") -> None:
        """Stop the pod as SIGTERM would (safe to call from any thread)."""
        if self._loop is not None and self._thread != threading.get_ident():
            self._loop.call_soon_threadsafe(self.request_stop, signal)
        else:
            self.request_stop(signal)

    def request_stop(self, signal: str = "SIGTERM") -> None:
        """Begin the stop once: ``signal`` is the name sent to handlers. Later calls do nothing."""
        if self._stop_signal is not None or self._phase == "stopped":
            return
        self._stop_signal = signal
        for listener in self._stop_listeners:
            listener(signal)
        if self._wake is not None:
            self._wake.set()

    def force_stop(self) -> None:
        """Skip the wait: cancel every bean now (a second Ctrl-C)."""
        self.request_stop("SIGINT")
        if self._force is not None and not self._force.done():
            self._force.set_result(None)

    def on_start(self, listener: Callable[[], object]) -> None:
        """Call ``listener()`` once every queued bean has been started."""
        self._start_listeners.append(listener)

    def on_stop(self, listener: Callable[[str], object]) -> None:
        """Call ``listener(signal_name)`` once, when a stop begins."""
        self._stop_listeners.append(listener)

    def _start(self, bean: Bean) -> None:
        self._live += 1
        self._launch(bean)

    def _launch(self, bean: Bean) -> None:
        assert self._loop is not None
        try:
            coro = bean.make_coroutine()  # a coroutine-object bean knows it ran by its started_at
        except Exception as exc:
            bean.started_at, bean.ended_at, bean.state = time.time(), None, BeanState.RUNNING
            self._bean_done(bean, exc, cancelled=False)
            return
        bean.started_at, bean.ended_at, bean.state = time.time(), None, BeanState.RUNNING
        task = bean.task = self._loop.create_task(coro, name=f"bean#{bean.id}")
        self._tasks[task] = bean
        task.add_done_callback(self._on_task_done, context=self._callback_context)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        bean = self._tasks.pop(task)
        if bean.task is not task:
            return
        if task.cancelled():
            self._bean_done(bean, None, cancelled=True)
        else:
            self._bean_done(bean, task.exception(), cancelled=False)

    def _bean_done(self, bean: Bean, exc: BaseException | None, *, cancelled: bool) -> None:
        """Every end of a bean's task passes here: record it, log it, restart or finish."""
        bean.ended_at = time.time()
        self._signals.forget(bean)  # a restarted bean registers its handlers again
        by_cancel = False
        if self._cancelled:
            by_cancel = bean.id in self._cancelled
            self._cancelled.discard(bean.id)
        if self._manual and bean.id in self._manual:
            return  # restart()/reload() starts it again itself
        fatal = False
        if exc is not None:
            if isinstance(exc, SystemExit) and exc.code in (None, 0):
                exc = None
            else:
                bean.exception = exc
                fatal = isinstance(exc, KeyboardInterrupt | SystemExit)
        failed = exc is not None
        policy: RestartPolicy | None = bean.restart
        if policy is not None and self._phase == "running" and not fatal and policy.wants(failed or cancelled):
            if not (cancelled and (by_cancel or policy.policy == "on-failure")):
                self._schedule_restart(bean, policy, exc)
                return
        if failed and self._throttle.allow():
            logger.error("bean %s failed", bean.describe(), exc_info=exc)
        state = BeanState.CANCELLED if cancelled else BeanState.FAILED if failed else BeanState.FINISHED
        self._ended(bean, state)
        if fatal and self._phase == "running":
            logger.error("bean %s raised %s: stopping the pod", bean.describe(), type(exc).__name__)
            self.request_stop("SIGTERM")

    def _schedule_restart(self, bean: Bean, policy: RestartPolicy, exc: BaseException | None) -> None:
        delay = policy.next_delay()
        what = "failed" if exc is not None else "ended"
        if delay is None:
            if self._throttle.allow():
                if exc is not None:
                    logger.error("bean %s failed", bean.describe(), exc_info=exc)
                logger.error(
                    "bean %s %s %d times within %g s: giving up (restart max=%d)",
                    bean.describe(), what, policy.max + 1, policy.window, policy.max,
                )  # fmt: skip
            if bean.exception is None:
                bean.exception = RuntimeError(f"restart limit reached ({policy.max} in {policy.window:g} s)")
            self._ended(bean, BeanState.FAILED)
            return
        if self._throttle.allow():
            if exc is not None:
                logger.error("bean %s failed", bean.describe(), exc_info=exc)
            logger.warning(
                "restarting %s (%d/%d) in %.1f s", bean.label or bean.describe(), len(policy.history), policy.max, delay
            )
        bean.state = BeanState.RESTARTING
        assert self._loop is not None
        self._restart_timers[bean.id] = self._loop.call_later(delay, self._restart_now, bean)

    def _restart_now(self, bean: Bean) -> None:
        self._restart_timers.pop(bean.id, None)
        bean.restarts += 1
        self._launch(bean)

    def _ended(self, bean: Bean, state: BeanState) -> None:
        """A started bean has ended for good."""
        bean.state = state
        bean.ended_at = bean.ended_at or time.time()
        if bean._waiters:
            bean._wake_waiters()
        self._live -= 1
        if self._live == 0:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            if not self.keep_alive and self._wake is not None:
                self._wake.set()

    def _close_unstarted(self, bean: Bean) -> None:
        if asyncio.iscoroutine(bean.obj) and bean.started_at is None:
            bean.obj.close()  # never awaited on purpose: say so without a RuntimeWarning

    def _live_beans(self) -> list[Bean]:
        return [b for b in self._beans.values() if b.task is not None and not b.task.done()]

    # -- stopping -------------------------------------------------------------------

    async def _shutdown(self) -> None:
        assert self._loop is not None and self._force is not None
        self._phase = "stopping"
        for bean_id, timer in list(self._restart_timers.items()):
            timer.cancel()
            del self._restart_timers[bean_id]
            self._ended(self._beans[bean_id], BeanState.CANCELLED)
        for bean in self._beans.values():
            if bean.state is BeanState.PENDING:
                self._close_unstarted(bean)
        signal = self._stop_signal
        if signal is not None:
            live = self._live_beans()
            wait = self.stop_wait_time
            limit = "for ever" if wait is None else f"up to {wait:g} s"
            logger.info("%s: stopping; waiting %s for %d running beans", signal, limit, len(live))
            deadline = None if wait is None else self._loop.time() + wait
            if self._signals.count(signal):
                await self._until(asyncio.ensure_future(self.send_signal(signal)), deadline, cancel=True)
            if self._live:
                await self._until(self._idle_future(), deadline)
            await self._cancel(self._live_beans())
        self._phase = "stopped"
        self.monitor.stop()
        self._throttle.summary()

    def _idle_future(self) -> asyncio.Future[None]:
        assert self._loop is not None
        future = self._loop.create_future()
        if self._live == 0:
            future.set_result(None)
        else:
            self._idle_waiters.append(future)
        return future

    async def _until(self, future: asyncio.Future[Any], deadline: float | None, *, cancel: bool = False) -> None:
        """Wait for ``future`` until ``deadline`` or a forced stop, whichever comes first."""
        assert self._loop is not None and self._force is not None
        timeout = None if deadline is None else max(0.0, deadline - self._loop.time())
        await asyncio.wait({future, self._force}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not future.done() and cancel:
            future.cancel()
            await asyncio.wait({future}, timeout=CANCEL_GRACE)

    async def _cancel(self, beans: list[Bean]) -> None:
        """Cancel ``beans``, re-cancel them for a short grace, and report those that refuse."""
        if not beans:
            return
        assert self._loop is not None
        names = ", ".join(b.describe() for b in beans[:10]) + (" ..." if len(beans) > 10 else "")
        logger.warning("cancelling %d beans still running: %s", len(beans), names)
        end = self._loop.time() + CANCEL_GRACE
        pending = beans
        while pending:
            for bean in pending:
                assert bean.task is not None
                bean.task.cancel(msg="aiopod: the pod is stopping")
            remaining = end - self._loop.time()
            if remaining <= 0:
                break
            await asyncio.wait([b.task for b in pending if b.task], timeout=min(_RECANCEL_EVERY, remaining))
            pending = [b for b in pending if b.task is not None and not b.task.done()]
        self.refused = pending
        for bean in pending:
            logger.error(
                "bean %s refused to stop: it went on after being cancelled for %g s "
                "(does it catch CancelledError without re-raising?)",
                bean.describe(), CANCEL_GRACE,
            )  # fmt: skip

    # -- changing a live pod (see also aiopod.pod.supervision) ------------------------

    async def restart(self, ref: BeanRef, *, wait: float | None = None) -> list[Bean]:
        """Stop these beans (cancel, bounded wait) and start them again, same id and label."""
        beans = self.get_beans(ref)
        await self._detached(self._relaunch(beans, {}, wait))
        return beans

    async def reload(self, ref: BeanRef, *, wait: float | None = None) -> list[Bean]:
        """Re-import the module of each bean's core, then restart the beans on the new code.

        If a module fails to import, nothing is restarted and ``ConfigError`` says why.
        """
        beans = self.get_beans(ref)
        modules: dict[str, Any] = {}
        for bean in beans:
            name = self._module_of(bean)
            if name not in modules:
                try:
                    modules[name] = importlib.reload(sys.modules[name])
                except SyntaxError as exc:
                    raise ConfigError(f"{exc.filename}:{exc.lineno}: syntax error: {exc.msg}") from exc
                except Exception as exc:
                    raise ConfigError(f"reloading {name!r} failed: {type(exc).__name__}: {exc}") from exc
        fresh: dict[int, Any] = {}
        for bean in beans:
            obj, _, kind = resolve_core(bean.core)
            fresh[bean.id] = (obj, kind)
        await self._detached(self._relaunch(beans, fresh, wait))
        return beans

    async def _detached(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in its own task: a bean restarting itself is cancelled on the way."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)  # keep a strong reference until it is done
        task.add_done_callback(self._background.discard)
        await asyncio.shield(task)

    @staticmethod
    def _module_of(bean: Bean) -> str:
        if asyncio.iscoroutine(bean.obj):
            raise ConfigError(f"bean {bean.describe()} is a coroutine object and cannot be reloaded")
        name = getattr(bean.obj, "__module__", None)
        if name is None or name not in sys.modules or name == "__main__":
            raise ConfigError(f"bean {bean.describe()}: its module {name!r} cannot be reloaded")
        return name  # type: ignore[no-any-return]

    async def _relaunch(self, beans: list[Bean], fresh: Mapping[int, Any], wait: float | None) -> None:
        if not self.running:
            raise PodStateError("the pod is not running; restart and reload work on a running pod")
        for bean in beans:
            if asyncio.iscoroutine(bean.obj):
                raise ConfigError(f"bean {bean.describe()} is a coroutine object, which can run only once")
        wait = self.stop_wait_time if wait is None else wait
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
            if bean.id in fresh:
                bean.obj, bean.kind = fresh[bean.id]
            timer = self._restart_timers.pop(bean.id, None)
            if timer is not None:
                timer.cancel()
            if bean.ended:
                self._live += 1
            bean.restarts += 1
            bean.exception = None
            self._launch(bean)

    def load(self, path: str) -> list[Bean]:
        """Read a config file into the running pod: its keys merge into ``config``, its beans start.

        The whole file is checked first; a bad file changes nothing and raises ``ConfigError``.
        """
        from pathlib import Path

        data = read_config_file(path)
        folder = str(Path(path).resolve().parent)
        if folder not in sys.path:  # as for -c: beans beside the config import
            sys.path.append(folder)
        entries = data.get("BEANS", [])
        if not isinstance(entries, list | tuple):
            raise ConfigError(f"{path}: BEANS must be a list of dicts, got {type(entries).__name__}")
        specs, problems = [], []
        for index, entry in enumerate(entries):
            try:
                if not isinstance(entry, Mapping):
                    raise ConfigError(f"{path}: BEANS[{index}]: must be a dict with a 'core' key")
                specs.append(make_spec(entry, f"{path}: BEANS[{index}]", Path(path).parent))
            except ConfigError as exc:
                problems += exc.problems
        if problems:
            raise ConfigError(problems)
        self.config.update({k: v for k, v in data.items() if k not in RESERVED})
        return [self.add_spec(spec) for spec in specs]

    def context(self) -> BeanContext:
        """A context that belongs to no bean (what the console uses)."""
        return BeanContext(self)

    def __repr__(self) -> str:
        return f"<Pod {self._phase} beans={len(self._beans)} live={self._live}>"
