"""Run a pod as a process: the loop, SIGINT/SIGTERM, and a deadline the loop cannot block."""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from types import FrameType
from typing import Any

from ._loops import loop_factory
from ._notify import notify
from .config import PodConfig
from .pod import CANCEL_GRACE, Pod

logger = logging.getLogger("aiopod")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
#: With STOP_WAIT_TIME None, how long the loop may take to even notice a stop.
ACK_TIMEOUT = 5.0
#: A second Ctrl-C ends the process at once if the loop has not answered the first for this long.
BLOCKED_AFTER = 1.0
#: Time on top of STOP_WAIT_TIME and the cancel grace for handlers and loop teardown.
DEADLINE_MARGIN = 2.0


class StopDeadline:
    """A thread that ends the process when a stop takes too long.

    Signal handlers added with ``loop.add_signal_handler`` never run while a bean blocks
    the loop, and ``asyncio.run`` waits for ever on a task that swallows cancellation;
    this deadline lives outside the loop so that SIGTERM always ends the process.
    """

    def __init__(self, stop_wait_time: float | None) -> None:
        self.stop_wait_time = stop_wait_time
        # Taken once and never released: arm() runs in signal handlers, which re-enter when
        # signals arrive in a burst, and a blocking acquire there would deadlock the main thread.
        self._armed = threading.Lock()
        self._ack = threading.Event()
        self._done = threading.Event()

    @property
    def acknowledged(self) -> bool:
        return self._ack.is_set()

    def arm(self) -> None:
        """Start counting (once)."""
        if not self._armed.acquire(blocking=False):
            return
        threading.Thread(target=self._watch, name="aiopod-stop-deadline", daemon=True).start()

    def acknowledge(self) -> None:
        """The loop has seen the stop: it is not blocked."""
        self._ack.set()

    def started(self, signal: str = "") -> None:
        """A stop has begun on the loop (so the loop answers): start counting."""
        self.acknowledge()
        self.arm()

    def disarm(self) -> None:
        """The pod has stopped; nothing to enforce."""
        self._done.set()

    def _watch(self) -> None:
        start = time.monotonic()
        wait = self.stop_wait_time
        budget = (ACK_TIMEOUT if wait is None else wait) + CANCEL_GRACE + DEADLINE_MARGIN
        if not self._ack.wait(budget) and not self._done.is_set():
            self.expire(f"the event loop did not answer the stop for {budget:.1f} s: a bean is blocking it")
        if wait is None:
            return  # the loop answers, and waiting for ever is what was asked for
        if not self._done.wait(max(0.0, budget - (time.monotonic() - start))):
            self.expire(f"the pod did not stop within {budget:.1f} s (STOP_WAIT_TIME {wait:g} s + grace)")

    def expire(self, why: str) -> None:
        """Dump every thread's stack to stderr and end the process with status 1."""
        try:
            sys.stderr.write(f"aiopod: {why}; the stacks follow, then exit with status 1\n")
            sys.stderr.flush()
            faulthandler.dump_traceback(all_threads=True)
        finally:
            os._exit(1)  # nothing else ends a process whose main thread is stuck


class ProcessSignals:
    """SIGINT and SIGTERM, owned in one place for the whole process.

    Installed with ``signal.signal`` rather than ``loop.add_signal_handler`` so the
    handler runs even while a bean blocks the loop (it only hands work to the loop).
    """

    def __init__(self, pod: Pod, deadline: StopDeadline) -> None:
        self.pod = pod
        self.deadline = deadline
        self.received = 0
        self._stop_requested = False
        self._first_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[int, Any] = {}

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self.handle)

    def restore(self) -> None:
        """Give the signals back; after a stop by signal, ignore late ones instead.

        A burst of SIGTERMs outlasts the stop: one arriving after the default handler is
        back would kill the exiting process with status -15 (or raise KeyboardInterrupt).
        """
        for sig, previous in self._previous.items():
            signal.signal(sig, signal.SIG_IGN if self.received else previous)
        self._previous.clear()

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        if signum == signal.SIGINT and not self.received:
            if any(handler() for handler in list(self.pod.interrupt_handlers)):
                return
        self.received += 1
        self.deadline.arm()
        # A flag, not ``received == 1``: a signal landing while this handler runs re-enters it
        # (Python runs handlers between bytecodes), and both calls would then see received == 2.
        if not self._stop_requested:
            self._stop_requested = True
            self._first_at = time.monotonic()
            self._call(self.pod.request_stop, signal.Signals(signum).name)
        elif signum == signal.SIGINT:
            waited = time.monotonic() - self._first_at
            if not self.deadline.acknowledged and waited > BLOCKED_AFTER:
                self.deadline.expire(f"second SIGINT and the event loop has not answered the first for {waited:.1f} s")
            self._call(self.pod.force_stop)

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is already closed: the pod has stopped
            pass


def configure_logging(level: str | int) -> None:
    """Log to stderr at ``level`` unless the application configured logging itself."""
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr)
    logging.getLogger("aiopod").setLevel(level)


async def _leftover_tasks(pod: Pod) -> None:
    """Cancel tasks the beans started and did not keep track of, so loop teardown cannot hang."""
    skip = {asyncio.current_task(), *(bean.task for bean in pod.refused)}  # reported already
    tasks = [t for t in asyncio.all_tasks() if t not in skip]
    if not tasks:
        return
    logger.debug("cancelling %d tasks left behind by beans", len(tasks))
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=CANCEL_GRACE)


async def _await(future: Awaitable[Any]) -> Any:
    return await future


def run_pod(
    settings: PodConfig,
    *,
    keep_alive: bool = False,
    guest: Callable[[Pod], Awaitable[Any]] | None = None,
) -> int:
    """Run a pod in this process until it ends or is stopped; return the exit status.

    ``guest(pod)`` runs beside the pod (the console); when it returns, the pod stops.
    SIGINT/SIGTERM stop the pod; the process cannot outlive the stop budget.
    """
    configure_logging(settings.log_level)
    factory = loop_factory(settings.loop_type)
    pod = Pod(
        settings.config,
        stop_wait_time=settings.stop_wait_time,
        keep_alive=keep_alive,
        bean_history=settings.bean_history,
        watchdog=settings.watchdog,
    )
    for spec in settings.beans:
        pod.add_spec(spec)
    deadline = StopDeadline(settings.stop_wait_time)
    signals = ProcessSignals(pod, deadline)
    pod.on_stop(deadline.started)
    pod.on_start(lambda: notify("READY=1"))
    pod.on_stop(lambda _: notify("STOPPING=1"))
    runner = asyncio.Runner(debug=settings.debug, loop_factory=factory)
    loop = runner.get_loop()
    if settings.debug:
        loop.slow_callback_duration = 0.1
    signals.install(loop)
    try:
        main = loop.create_task(_main(pod, guest))
        while True:
            try:
                status: int = runner.run(_await(main))
                break
            except (KeyboardInterrupt, SystemExit):
                continue  # raised in a bean: its done callback has asked the pod to stop
        deadline.started()
        runner.run(_leftover_tasks(pod))
    finally:
        signals.restore()
        if not pod.refused:
            runner.close()
        deadline.disarm()
    if pod.refused:
        # Closing the loop would wait for ever on beans that refuse to stop, and letting the
        # interpreter collect them prints "Task was destroyed but it is pending": they were
        # reported already, so leave now.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


async def _main(pod: Pod, guest: Callable[[Pod], Awaitable[Any]] | None) -> int:
    if guest is None:
        return await pod.run()
    pod_task = asyncio.create_task(pod.run())
    guest_task = asyncio.create_task(_await(guest(pod)))
    await asyncio.wait({pod_task, guest_task}, return_when=asyncio.FIRST_COMPLETED)
    if guest_task.done():
        if not guest_task.cancelled() and guest_task.exception() is not None:
            logger.error("the console failed", exc_info=guest_task.exception())
        pod.request_stop("SIGTERM")
    status = await pod_task
    if not guest_task.done():
        guest_task.cancel()
        await asyncio.wait({guest_task}, timeout=CANCEL_GRACE)
    return status


def options_from(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Map CLI-style option names (``log_level``) to config keys (``LOG_LEVEL``)."""
    return {key.upper(): value for key, value in mapping.items() if value is not None}
