"""The pod: runs beans side by side on one loop, and stops them in a bounded way.

The parts: ``BeanRegistry`` (the beans by id and label, with a bounded history),
``Supervisor`` (what happens when a bean ends: restarts, failures, their log), ``Bean``
(one bean's own state and waiters), ``SignalHub`` (named signals). ``Pod`` ties them
together and owns the pod's phase and its stop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from types import CoroutineType
from typing import Any

from ._collector import frozen
from ._importer import coroutine_name
from .bean import CANCELLED, COROUTINE, NO_KWARGS, Bean
from .config import (
    BeanSpec,
    Config,
    check_kwargs,
    checks_kwargs,
    entry_spec,
    load_into,
    parse_stop_wait_time,
    resolve_core,
)
from .context import BeanContext, default_label
from .errors import BeanNotFound, ConfigError, PodStateError
from .health import Health, LoopMonitor
from .registry import DEFAULT_HISTORY, BeanRef, BeanRegistry
from .signals import SignalHub, SignalResults
from .supervision import parse_restart
from .supervisor import Supervisor, reimport

logger = logging.getLogger("aiopod")

#: After cancelling, how long beans get to finish their cleanup before they count as refusing.
CANCEL_GRACE = 1.0
_RECANCEL_EVERY = 0.1
#: Beans started, or cancelled at a stop, between two turns of the loop: 100k at once
#: would block the loop for seconds (issue 15, item 9). Fewer than a third of the
#: collector's young threshold (700): a turn that ends a bean makes about three objects
#: that live until the next turn (the handles of its step and of its done callback), and
#: more than 700 of them set off a young collection over them: 300 in a 100k-bean stop at
#: 1000 a turn, 2 at 250, which cut the stop's instructions by 8% (issue 15, item 9).
BATCH = 250
#: Beans refusing to stop that are named one by one; the others are counted in one line.
REFUSALS_NAMED = 10

__all__ = ["CANCEL_GRACE", "BeanNotFound", "BeanRef", "Pod"]


class Pod:
    """Beans by id and label, their signals, and the pod's life: run, then a bounded stop.

    ``keep_alive`` keeps the pod up with zero beans (the console); a headless pod ends
    when its last bean ends. ``bean_history`` ended beans are kept for ``ps()`` and
    lookups; ``watchdog`` turns the loop monitor (lag, blocked-loop warnings) on or off.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        stop_wait_time: float | None = 5.0,
        keep_alive: bool = False,
        block_threshold: float = 1.0,
        bean_history: int = DEFAULT_HISTORY,
        watchdog: bool = True,
    ) -> None:
        self.config = config if isinstance(config, Config) else Config(config)
        self.stop_wait_time = stop_wait_time
        self.keep_alive = keep_alive
        #: Beans that went on after being cancelled at the stop.
        self.refused: list[Bean] = []
        #: Asked first when SIGINT arrives; one that returns True has taken it (the
        #: console cancels its running statement) and the pod does not stop.
        self.interrupt_handlers: list[Callable[[], bool]] = []
        self.monitor = LoopMonitor(threshold=block_threshold, enabled=watchdog)
        self._signals = SignalHub()
        self._registry = BeanRegistry(self, bean_history)
        self._registry.on_idle(self._idle)
        self._supervisor = Supervisor(self._registry, self._signals, on_fatal=lambda: self.request_stop("SIGTERM"))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._phase = "new"  # new -> running -> stopping -> stopped
        #: True once a stop has been asked for or has begun: the pod takes no new beans.
        #: (An attribute, not a property: ``add_bean`` reads it once per bean, issue 14.)
        self.stopping = False
        self._wake: asyncio.Event | None = None
        self._force: asyncio.Future[None] | None = None
        self._stop_signal: str | None = None
        self._stop_listeners: list[Callable[[str], object]] = []
        self._start_listeners: list[Callable[[], object]] = []
        self._background: set[asyncio.Task[Any]] = set()

    # -- the beans ------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise PodStateError("the pod is not running yet, so it has no loop; use it from a bean")
        return self._loop

    @property
    def beans(self) -> list[Bean]:
        """The live beans and the most recent ended ones (``bean_history``), in id order."""
        return list(self._registry)

    @property
    def live(self) -> int:
        """How many beans are started and not ended for good (restarting ones included)."""
        return self._registry.live

    @property
    def bean_history(self) -> int:
        """How many ended beans are kept."""
        return self._registry.history

    @property
    def running(self) -> bool:
        return self._phase == "running"

    @property
    def phase(self) -> str:
        """``new``, ``running``, ``stopping`` or ``stopped``."""
        return self._phase

    def add_bean(self, obj: Any, label: str | None = None, *, restart: Any = None, **kwargs: Any) -> Bean:
        """Add a bean: queued before the pod runs, started at once while it runs (hot add).

        ``obj`` is one of the four bean kinds or an import string naming one.
        """
        if self.stopping:
            raise PodStateError("the pod is stopping; it takes no new beans")
        if label is not None and not isinstance(label, str):
            raise TypeError(f"label must be a string, got {label!r}")
        if type(obj) is CoroutineType and not kwargs:
            # The hot path (a bean per job): what resolve_core says of a coroutine object; it
            # has no check_kwargs and no @pass_context label.
            found, core, kind = obj, coroutine_name(obj), COROUTINE
        elif "config_file" in kwargs:  # read as a BEANS entry's is, by the one function that reads them
            return self.add_spec(entry_spec({"core": obj, "label": label, "restart": restart, **kwargs}))
        else:
            found, core, kind = resolve_core(obj)
            if checks_kwargs(found):
                problems = check_kwargs(found, kwargs, f"bean {core!r}")
                if problems:
                    raise ConfigError(problems)
            label = label if label is not None else default_label(found)
        policy = None if restart is None else parse_restart(restart)
        running = self._phase == "running"  # a running pod starts the bean at once (a hot add)
        bean = self._registry.new(found, core, kind, label, kwargs, policy, live=running)
        if running:
            self._supervisor.launch(bean)
        return bean

    def add_spec(self, spec: BeanSpec) -> Bean:
        """Add a bean from a validated config entry."""
        if self.stopping:
            raise PodStateError("the pod is stopping; it takes no new beans")
        kwargs = dict(spec.kwargs) if spec.kwargs else NO_KWARGS  # the bean's own copy
        running = self._phase == "running"
        bean = self._registry.new(spec.obj, spec.core, spec.kind, spec.label, kwargs, spec.restart, live=running)
        if running:
            self._supervisor.launch(bean)
        return bean

    def get_beans(self, ref: BeanRef) -> list[Bean]:
        """The beans with this id or label (or this very bean); raises ``BeanNotFound``."""
        return self._registry.get(ref)

    def get_bean(self, ref: BeanRef) -> Bean:
        """The one bean with this id or label; ``BeanNotFound`` if none, ``AmbiguousBean`` if several."""
        return self._registry.get_one(ref)

    def cancel(self, ref: BeanRef) -> list[Bean]:
        """Cancel the beans with this id or label; returns them. A cancelled bean is not restarted."""
        beans = self.get_beans(ref)
        for bean in beans:
            self._supervisor.cancel(bean)
        return beans

    async def wait_beans_done(self, ref: BeanRef) -> None:
        """Wait until every bean with this id or label has ended for good."""
        await asyncio.gather(*(bean.wait() for bean in self.get_beans(ref)))

    async def wait_idle(self) -> None:
        """Wait until no bean is live."""
        await self._registry.idle()

    # -- signals --------------------------------------------------------------------

    def add_signal_handler(self, sig: str, handler: Callable[..., Any], *, bean: Bean | None = None) -> None:
        """Call ``handler(signal=sig, **kwargs)`` when ``sig`` is sent (to ``bean``'s label)."""
        self._signals.add(sig, handler, bean)

    def remove_signal_handler(self, sig: str, handler: Callable[..., Any], *, bean: Bean | None = None) -> bool:
        """Stop calling ``handler`` for ``sig``; returns whether it was registered."""
        return self._signals.remove(sig, handler, bean)

    def signal_handlers(self, sig: str) -> int:
        """How many handlers are registered for ``sig`` (a probe for tests and the console)."""
        return self._signals.count(sig)

    async def send_signal(self, sig: str, labels: str | Iterable[str] | None = None, **kwargs: Any) -> SignalResults:
        """Run the handlers for ``sig`` (only those of beans with ``labels``, if given)."""
        return await self._signals.send(sig, labels, **kwargs)

    # -- running --------------------------------------------------------------------

    async def run(self) -> int:
        """Start the beans and run until they all end (headless) or a stop; return the exit status."""
        if self._phase != "new":
            raise PodStateError("this pod has already run; make a new Pod")
        self._loop = self._supervisor.loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._force = self._loop.create_future()
        self._phase = "running"
        self.monitor.start(self._loop)
        with frozen() as keep:  # the start burst (aiopod.pod._collector)
            # All live first: one that ends at once must not look like the last.
            pending = self._registry.start_pending()
            for index, bean in enumerate(pending, 1):
                if self._stop_signal is not None:  # stopped while starting: the rest never start
                    bean.discard()
                    self._registry.ended(bean, CANCELLED)
                    continue
                self._supervisor.launch(bean)
                if index % BATCH == 0:
                    keep()
                    await asyncio.sleep(0)  # 100k at once would block the loop for seconds
            del pending  # the start's list would keep every first bean alive until the pod ends
        for listener in self._start_listeners:
            listener()
        if self._stop_signal is None and (self.keep_alive or self._registry.live):
            await self._wake.wait()
        with frozen() as keep:  # the stop burst
            await self._shutdown(keep)
        return self.exit_status

    @property
    def exit_status(self) -> int:
        """What ``aiopod run`` exits with (see the README, "Stopping").

        ``n`` when a bean called ``sys.exit(n)`` with n not 0 (the first one to); else 1
        when a bean failed for good or refused to stop; else 0. A bean with a restart policy that fails
        once the stop has begun does not count: it would have been restarted.
        """
        supervisor = self._supervisor
        if supervisor.exit_code:
            return supervisor.exit_code
        return 1 if supervisor.failed or self.refused else 0

    def health(self) -> Health:
        """Loop lag now and at worst, and whether the loop is blocked right now."""
        return self.monitor.health()

    def stop(self, timeout: float | str | None = None, signal: str = "SIGTERM") -> None:
        """Stop the pod as SIGTERM would (safe to call from any thread).

        ``timeout`` (the seed's argument) is this stop's STOP_WAIT_TIME in seconds
        (``math.inf``: wait for ever); a string first is the signal name (``stop("SIGINT")``).
        """
        if isinstance(timeout, str):
            signal, timeout = timeout, None
        wait = self.stop_wait_time if timeout is None else parse_stop_wait_time(timeout)
        if self._loop is not None and self._thread != threading.get_ident():
            self._loop.call_soon_threadsafe(self._stop_now, wait, signal)
        else:
            self._stop_now(wait, signal)

    def _stop_now(self, wait: float | None, signal: str) -> None:
        if not self.stopping:
            self.stop_wait_time = wait
        self.request_stop(signal)

    def request_stop(self, signal: str = "SIGTERM") -> None:
        """Begin the stop once: ``signal`` is the name sent to handlers. Later calls do nothing."""
        if self._stop_signal is not None or self._phase == "stopped":
            return
        self._stop_signal = signal
        self.stopping = True
        self._supervisor.restarting = False
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

    def _idle(self) -> None:
        if not self.keep_alive and self._wake is not None:
            self._wake.set()

    # -- stopping -------------------------------------------------------------------

    async def _shutdown(self, keep: Callable[[], None]) -> None:
        assert self._loop is not None
        wait = self.stop_wait_time
        deadline = None if wait is None else self._loop.time() + wait  # from the stop, not after what follows
        self._phase = "stopping"
        self.stopping = True
        self._supervisor.stop()
        for bean in self._registry.pending():
            bean.discard()
        signal = self._stop_signal
        if signal is not None:
            limit = "for ever" if wait is None else f"up to {wait:g} s"
            logger.info("%s: stopping; waiting %s for %d running beans", signal, limit, self._registry.live)
            if self._signals.count(signal):
                await self._until(asyncio.ensure_future(self.send_signal(signal)), deadline, cancel=True)
            if self._registry.live:
                await self._until(self._registry.idle(), deadline)
            await self._cancel(self._registry.running(), keep)
        self._phase = "stopped"
        self.monitor.stop()
        self._supervisor.log.summary()

    async def _until(self, future: asyncio.Future[Any], deadline: float | None, *, cancel: bool = False) -> None:
        """Wait for ``future`` until ``deadline`` or a forced stop, whichever comes first."""
        assert self._loop is not None and self._force is not None
        timeout = None if deadline is None else max(0.0, deadline - self._loop.time())
        await asyncio.wait({future, self._force}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not future.done() and cancel:
            future.cancel()
            await asyncio.wait({future}, timeout=CANCEL_GRACE)

    async def _cancel(self, beans: list[Bean], keep: Callable[[], None]) -> None:
        """Cancel ``beans``, re-cancel them for a short grace, and report those that refuse."""
        if not beans:
            return
        assert self._loop is not None
        names = ", ".join(b.describe() for b in beans[:10]) + (" ..." if len(beans) > 10 else "")
        logger.warning("cancelling %d beans still running: %s", len(beans), names)
        end: float | None = None  # the grace starts once every bean has been cancelled
        pending = beans
        while pending:
            for index, bean in enumerate(pending, 1):
                assert bean.task is not None
                bean.task.cancel("aiopod: the pod is stopping")  # positional: a keyword costs a parse per bean
                if index % BATCH == 0:
                    keep()
                    await asyncio.sleep(0)  # let those cancelled so far end: the loop stays responsive
            if end is None:
                end = self._loop.time() + CANCEL_GRACE
            remaining = end - self._loop.time()
            if remaining > 0:
                idle = self._registry.idle()
                await asyncio.wait({idle}, timeout=min(_RECANCEL_EVERY, remaining))
                idle.cancel()
            # No bean live: every one has ended (the scan would read 100k done tasks for nothing).
            pending = [b for b in pending if b.task is not None and not b.task.done()] if self._registry.live else []
            if self._loop.time() >= end:
                break
        self.refused = pending
        for bean in pending[:REFUSALS_NAMED]:
            logger.error(
                "bean %s refused to stop: it went on after being cancelled for %g s "
                "(does it catch CancelledError without re-raising?)",
                bean.describe(), CANCEL_GRACE,
            )  # fmt: skip
        if len(pending) > REFUSALS_NAMED:  # 10k of them must not be 10k lines (issue 15, item 14)
            logger.error(
                "%d more beans refused to stop (not named one by one; see pod.refused)",
                len(pending) - REFUSALS_NAMED,
            )

    # -- changing a live pod ----------------------------------------------------------

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
        fresh = reimport(beans)
        await self._detached(self._relaunch(beans, fresh, wait))
        return beans

    async def _detached(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in its own task: a bean restarting itself is cancelled on the way."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)  # keep a strong reference until it is done
        task.add_done_callback(self._background.discard)
        await asyncio.shield(task)

    async def _relaunch(self, beans: list[Bean], fresh: Mapping[int, Any], wait: float | None) -> None:
        if not self.running:
            raise PodStateError("the pod is not running; restart and reload work on a running pod")
        await self._supervisor.relaunch(beans, fresh, self.stop_wait_time if wait is None else wait)

    def load(self, path: str) -> list[Bean]:
        """Read a config file into the running pod: its keys merge into ``config``, its beans start.

        ``STOP_WAIT_TIME``, ``LOG_LEVEL`` and ``DEBUG`` apply at once; a change of
        ``LOOP_TYPE`` is logged as impossible. A bad file changes nothing and raises ``ConfigError``.
        """
        return load_into(self, path)

    def context(self) -> BeanContext:
        """A context that belongs to no bean (what the console uses)."""
        return BeanContext(self)

    def __repr__(self) -> str:
        return f"<Pod {self._phase} beans={len(self._registry)} live={self._registry.live}>"
