"""What a pod needs from its process: the signals, a stop deadline, and an end bounded in time.

One object owns the process signals from before the config is imported until the
process ends (the CLI), or for the length of ``run_pod`` (an embedder):

- SIGINT, SIGTERM: stop the pod (before it runs: abandon the start-up);
- SIGHUP, SIGUSR1, SIGUSR2: delivered to the beans' handlers as ``"SIGHUP"``... A SIGHUP
  that no bean handles stops the pod as SIGTERM would (a hung-up terminal must not leave
  an orphan); an unhandled SIGUSR1/SIGUSR2 is logged and ignored;
- SIGQUIT: every running bean's stack and every thread's stack to stderr; the pod goes on.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from ._deadline import DEADLINE_MARGIN, StopDeadline
from ._stacks import bean_stacks, dump_threads, write_with_threads
from ._wakeup import Wakeup
from .errors import StartupInterrupted  # config loading lets it through: one class for both

if TYPE_CHECKING:
    from .pod import Pod

logger = logging.getLogger("aiopod")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
NAMED_SIGNALS = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
OWNED = (*STOP_SIGNALS, *NAMED_SIGNALS, signal.SIGQUIT)
#: A second Ctrl-C ends the process at once if the loop has not answered the first for this long.
BLOCKED_AFTER = 1.0
#: How often the pod checks that nobody took its signals away (issue 15, item 7).
CHECK_EVERY = 0.1
#: A stop signal during start-up ends the process within this, even if an import is stuck in C.
STARTUP_GRACE = 1.0

_DEFAULTS = (signal.SIG_DFL, signal.SIG_IGN, signal.default_int_handler, None)


class PodProcess:
    """The process signals, the stop deadline and the process's end, in one place.

    ``ends_process`` is for the CLI: an expired deadline ends the process, and
    ``finish()`` ends it once the pod has stopped. An embedder's ``run_pod`` makes one
    without it, for its own length, and the process is never ended for it.
    """

    _current: ClassVar[PodProcess | None] = None

    def __init__(self, *, ends_process: bool) -> None:
        self.ends_process = ends_process
        self.pod: Pod | None = None
        self.deadline = StopDeadline(self._wait_time, ends_process=ends_process)
        #: Tasks left pending on a closed loop (beans that refused to stop): reported already.
        self.abandoned: list[asyncio.Task[Any]] = []
        self.received = 0
        self._stop_wait_time: float | None = 0.0  # the pod's, once it has gone
        self._loop: asyncio.AbstractEventLoop | None = None
        self._phase = "starting"  # starting -> running -> ended
        self._phase_lock = threading.Lock()
        self._left_startup = threading.Event()
        self._stop_requested = False
        self._first_at = 0.0
        self._handler = self.handle  # one bound method, so that ownership checks can use ``is``
        self._previous: dict[int, Any] = {}
        self._chained: dict[int, Callable[[int, FrameType | None], Any]] = {}
        self._warned: set[tuple[int, int]] = set()
        self._check: asyncio.Handle | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._wakeup: Wakeup | None = None

    @classmethod
    def current(cls) -> PodProcess | None:
        """The installed owner of this process's signals, if any (the CLI installs one early)."""
        return cls._current

    # -- installing ------------------------------------------------------------------

    def install(self) -> None:
        """Take the signals (main thread only; elsewhere the process keeps its own)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in OWNED:
            self._previous[sig] = signal.signal(sig, self._handler)
        PodProcess._current = self
        if self.ends_process:
            self._wakeup = Wakeup(self._heard)

    def replay(self, signals: list[int]) -> None:
        """Handle, in order, signals that came before ``install()`` (the ``aiopod`` command held them)."""
        for signum in signals:
            self.handle(signum)

    def attach(self, pod: Pod, loop: asyncio.AbstractEventLoop) -> None:
        """The pod takes over: from now on a stop signal stops it instead of the start-up."""
        self.pod, self._loop = pod, loop
        pod.on_stop(self.deadline.started)
        self._set_phase("running")
        if self._previous:
            self._check = loop.call_soon(self._check_ownership)
        if self.received and not self._stop_requested:  # a StartupInterrupted was swallowed by an import
            self._stop_requested = True
            self._first_at = time.monotonic()
            loop.call_soon(pod.request_stop, "SIGTERM")

    def loop_closed(self) -> None:
        """The pod's loop has ended: keep the signals (a library may have reset them) until the end."""
        self._set_phase("ended")
        if self._check is not None:
            self._check.cancel()
        self.deadline.acknowledge()
        if self._previous:
            for sig in OWNED:  # loop.remove_signal_handler() puts SIG_DFL back: a late SIGTERM would kill
                if signal.getsignal(sig) is not self._handler:
                    signal.signal(sig, self._handler)
        if not self.ends_process:
            self.deadline.disarm()
        # Let go of the pod. This object lives to the process's end (its daemon threads hold
        # it, and the interpreter never frees what a daemon thread holds), and so would all the
        # pod reaches: bean modules and their globals, an open file's buffer never written.
        if self.pod is not None:
            self._stop_wait_time = self.pod.stop_wait_time
        self.pod = self._loop = None

    def abandon_startup(self) -> None:
        """The start-up was interrupted (and reported): the process is ending."""
        self._set_phase("ended")
        self.deadline.started()  # threads an import started get the budget of a stop, no more

    def _set_phase(self, phase: str) -> None:
        with self._phase_lock:
            self._phase = phase
        self._left_startup.set()

    def uninstall(self) -> None:
        """Give the signals back; after a stop by signal, ignore late stop signals instead.

        A burst of SIGTERMs outlasts the stop: one arriving after the default handler is
        back would kill the exiting process with status -15 (or raise KeyboardInterrupt).
        """
        for sig, previous in self._previous.items():
            signal.signal(sig, signal.SIG_IGN if self.received and sig in STOP_SIGNALS else previous)
        self._previous.clear()
        if self._wakeup is not None:
            self._wakeup.close()
        if PodProcess._current is self:
            PodProcess._current = None

    # -- the signals -----------------------------------------------------------------

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        """The handler of every owned signal (runs in the main thread, between bytecodes)."""
        chained = self._chained.get(signum)
        if chained is not None:
            self._call_chained(signum, chained, frame)
        if signum == signal.SIGQUIT:
            self.dump_stacks()
        elif self._phase == "starting":
            if signum in STOP_SIGNALS or signum == signal.SIGHUP:
                self.received += 1
                raise StartupInterrupted(signal.Signals(signum).name)
            logger.warning("%s while starting up: ignored", signal.Signals(signum).name)
        elif signum in STOP_SIGNALS:
            self._stop_signal(signum)
        elif self._phase == "running":
            self._call(self._deliver, signal.Signals(signum).name)

    def _stop_signal(self, signum: int) -> None:
        if signum == signal.SIGINT and not self.received and self.pod is not None:
            if any(handler() for handler in list(self.pod.interrupt_handlers)):
                return  # the console took it: Ctrl-C while a statement runs is the console's
        self.received += 1
        self.deadline.arm()
        # A flag, not ``received == 1``: a signal landing while this handler runs re-enters it
        # (Python runs handlers between bytecodes), and both calls would then see received == 2.
        if not self._stop_requested:
            self._stop_requested = True
            self._first_at = time.monotonic()
            if self.pod is not None:
                self._call(self.pod.request_stop, signal.Signals(signum).name)
        elif signum == signal.SIGINT and self.pod is not None:
            waited = time.monotonic() - self._first_at
            if not self.deadline.acknowledged and waited > BLOCKED_AFTER:
                self.deadline.expire(f"second SIGINT and the event loop has not answered the first for {waited:.1f} s")
            self._call(self.pod.force_stop)

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        if self._loop is None:
            return
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is already closed: the pod has stopped
            pass

    def _deliver(self, name: str) -> None:
        """On the loop: hand SIGHUP/SIGUSR1/SIGUSR2 to the beans' handlers."""
        assert self.pod is not None and self._loop is not None
        if self.pod.stopping:
            logger.info("%s while stopping: ignored", name)
            return
        task = self._loop.create_task(self._send(self.pod, name))
        self._deliveries.add(task)  # keep a strong reference until it is done
        task.add_done_callback(self._deliveries.discard)

    @staticmethod
    async def _send(pod: Pod, name: str) -> None:
        results = await pod.send_signal(name)  # logs, never raises, what a handler raised
        if results:
            logger.info("%s: delivered to %d handlers", name, len(results))
        elif name == "SIGHUP":
            logger.warning("SIGHUP and no bean handles it: stopping as on SIGTERM")
            pod.request_stop("SIGTERM")
        else:
            logger.warning("%s and no bean handles it (context.add_signal_handler(%r, ...)): ignored", name, name)

    def _heard(self, signum: int) -> None:
        """In the wake-up thread, as soon as a signal arrives, whatever the main thread is doing."""
        with self._phase_lock:
            phase = self._phase
        if phase != "starting":
            if signum == signal.SIGTERM:
                self.deadline.arm()  # even if a bean is stuck in C and the handler cannot run
            return
        if signum not in STOP_SIGNALS and signum != signal.SIGHUP:
            return
        self._left_startup.wait(STARTUP_GRACE)  # the main thread's handler normally ends it first
        with self._phase_lock:
            if self._phase != "starting":
                return
            name = signal.Signals(signum).name
            sys.stderr.write(f"aiopod: {name} while starting up (an import is stuck): stopped before any bean ran\n")
            sys.stderr.flush()
            os._exit(0)

    # -- ownership -------------------------------------------------------------------

    def _check_ownership(self) -> None:
        """Take back a signal a bean or a library took (``signal.signal``, ``loop.add_signal_handler``).

        A foreign Python handler is called first from then on (``loop.add_signal_handler``
        callbacks keep working: the loop hears the signal through its wake-up fd anyway).
        A console takes SIGINT through ``pod.interrupt_handlers``, never by replacing it.
        """
        assert self._loop is not None and self.pod is not None
        self._check = self._loop.call_later(CHECK_EVERY, self._check_ownership)
        taken = []
        ignored = _ignored_by_the_kernel()
        for sig in OWNED:
            current: Any = signal.getsignal(sig)
            if current is self._handler:
                if sig not in ignored:
                    continue
                current = _IGNORED_IN_C  # sigaction() from C code: Python's own table does not know
            signal.signal(sig, self._handler)  # first: the handler taken away may be about to run
            chain = callable(current) and current not in _DEFAULTS
            if chain:
                self._chained[sig] = current
            else:
                self._chained.pop(sig, None)
            taken.append((sig, current, chain))
        for sig, current, chain in taken:
            key = (sig, id(current))
            if key not in self._warned:
                self._warned.add(key)
                name = signal.Signals(sig).name
                logger.warning(
                    "%s was taken away (its handler became %s, by signal.signal or loop.add_signal_handler): "
                    "aiopod owns it and took it back%s; to hear %s, use context.add_signal_handler(%r, ...)",
                    name, _describe(current), ", calling that handler first" if chain else "", name, name,
                )  # fmt: skip

    def _call_chained(self, signum: int, handler: Callable[[int, FrameType | None], Any], frame: Any) -> None:
        try:
            handler(signum, frame)
        except BaseException as exc:  # sys.exit() in a library's handler must not skip the stop
            logger.warning("the %s handler %s raised %r; aiopod goes on with the signal",
                           signal.Signals(signum).name, _describe(handler), exc)  # fmt: skip

    # -- SIGQUIT ---------------------------------------------------------------------

    def dump_stacks(self) -> None:
        """Every running bean's stack (grouped when identical) and every thread's, to stderr.

        The stacks are taken here, in the handler; they are written from a thread of its own,
        as the signal may have come in the middle of a write to stderr (which would re-enter).
        """
        beans = [b for b in self.pod.beans if b.task is not None and not b.task.done()] if self.pod else []
        text = f"aiopod: SIGQUIT: the stacks of {len(beans)} running beans and of every thread; the pod goes on\n"
        text += bean_stacks(beans)
        threading.Thread(target=write_with_threads, args=(text,), name="aiopod-sigquit", daemon=True).start()

    # -- the end of the process (CLI) ------------------------------------------------

    def lingering_threads(self) -> list[threading.Thread]:
        """Wait for non-daemon threads, as the interpreter would, but only within the stop budget.

        Without a stop this waits as long as they run; a stop signal meanwhile bounds it.
        Returns the threads still running when the budget (less a margin) ran out.
        """
        me = threading.current_thread()
        while True:
            alive = [t for t in threading.enumerate() if t is not me and not t.daemon and t.is_alive()]
            if not alive:
                return []
            end = self.deadline.ends_at(margin=DEADLINE_MARGIN / 2)
            now = time.monotonic()
            if end is not None and now >= end:
                return alive
            alive[0].join(0.05 if end is None else min(0.05, end - now))

    def finish(self, status: int) -> NoReturn:
        """End the process with ``status`` once its threads are done, within the stop budget."""
        threads = self.lingering_threads()
        if threads:
            names = ", ".join(repr(t.name) for t in threads)
            logger.error("%d threads still running after the stop budget, not waited for: %s (status 1); "
                         "their stacks follow", len(threads), names)  # fmt: skip
            dump_threads()
            status = 1
        if threads or self.abandoned:
            # Waiting would never end, and tearing the interpreter down would run the cleanup of
            # beans that refused to stop outside their loop: they were reported, so leave now,
            # but after what users rely on at exit: the atexit handlers (logging's shutdown, which
            # flushes the handlers, is one), then stdio. One that hangs meets the stop deadline,
            # which then ends the process with this status.
            self.deadline.final_status = status
            atexit._run_exitfuncs()
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
        self.deadline.final_status = status
        sys.exit(status)

    def _wait_time(self) -> object:
        return self.pod.stop_wait_time if self.pod is not None else self._stop_wait_time


#: What a signal's handler became when C code ignored it behind Python's back.
_IGNORED_IN_C = "SIG_IGN (set from C code)"


def _ignored_by_the_kernel() -> frozenset[int]:
    """The owned signals the kernel ignores for this process (Linux: ``sigignore`` in /proc/self/stat)."""
    try:
        fd = os.open("/proc/self/stat", os.O_RDONLY)
        try:
            stat = os.read(fd, 4096)
        finally:
            os.close(fd)
        mask = int(stat.rsplit(b")", 1)[1].split()[30])  # field 33; the name in (...) may hold spaces
    except (OSError, ValueError, IndexError):  # not Linux, or no /proc: Python's table is all we see
        return frozenset()
    return frozenset(sig for sig in OWNED if mask >> (sig - 1) & 1)


def _describe(handler: object) -> str:
    if isinstance(handler, str):
        return handler
    if handler in (signal.SIG_IGN, signal.SIG_DFL):
        return signal.Handlers(handler).name  # type: ignore[arg-type]
    module = getattr(handler, "__module__", None)
    name = getattr(handler, "__qualname__", None) or repr(handler)
    return f"{module}.{name}" if module else name
