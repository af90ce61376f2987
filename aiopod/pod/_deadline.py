"""A deadline outside the event loop: once a stop begins, it cannot take longer than its budget."""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable

from ._stacks import dump_threads
from .pod import CANCEL_GRACE

#: With STOP_WAIT_TIME None, how long the loop may take to even notice a stop.
ACK_TIMEOUT = 5.0
#: Time on top of STOP_WAIT_TIME and the cancel grace for handlers and loop teardown.
DEADLINE_MARGIN = 2.0
#: Waits longer than this (about 31 years) are "for ever": thread waits cannot hold much more
#: (``threading.TIMEOUT_MAX`` is about 9.2e9 s) and would raise OverflowError (issue 15, item 8).
LONGEST_WAIT = 1e9


def bounded_wait(value: object) -> float | None:
    """STOP_WAIT_TIME as a number the clocks can hold: seconds >= 0, or None for "wait for ever".

    The config is validated elsewhere; this keeps the stop working whatever it is given:
    ``inf``, ``nan`` and anything above ``LONGEST_WAIT`` mean "for ever", as None does.
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # 10**400 overflows: that is "for ever" too
        return None
    if math.isnan(seconds) or seconds > LONGEST_WAIT:
        return None
    return max(0.0, seconds)


class StopDeadline:
    """A thread that enforces the stop budget when a stop takes too long.

    Signal handlers added with ``loop.add_signal_handler`` never run while a bean blocks
    the loop, ``asyncio.run`` waits for ever on a task that swallows cancellation, and the
    interpreter waits for ever on non-daemon threads; this deadline lives outside all of
    them. ``ends_process`` (the CLI only) makes an expired deadline end the process with
    status 1; otherwise (an embedder's ``run_pod``) it reports and lets the process live.
    """

    def __init__(self, wait_time: Callable[[], object], *, ends_process: bool) -> None:
        self._wait_time = wait_time
        self.ends_process = ends_process
        # Taken once and never released: arm() runs in signal handlers, which re-enter when
        # signals arrive in a burst, and a blocking acquire there would deadlock the main thread.
        self._armed = threading.Lock()
        self._ack = threading.Event()
        self._done = threading.Event()
        self.armed_at: float | None = None
        self.wait: float | None = None
        #: Set once the pod has stopped and the process only has the interpreter's teardown left.
        self.final_status: int | None = None

    @property
    def acknowledged(self) -> bool:
        return self._ack.is_set()

    def arm(self) -> None:
        """Start counting (once)."""
        if not self._armed.acquire(blocking=False):
            return
        self.wait = bounded_wait(self._wait_time())
        self.armed_at = time.monotonic()
        threading.Thread(target=self._watch, name="aiopod-stop-deadline", daemon=True).start()

    def acknowledge(self) -> None:
        """The loop has seen the stop: it is not blocked."""
        self._ack.set()

    def started(self, signal: str = "") -> None:
        """A stop has begun on the loop (so the loop answers): start counting."""
        self.acknowledge()
        self.arm()

    def disarm(self) -> None:
        """Nothing left to enforce (an embedder's pod has stopped)."""
        self._done.set()

    def ends_at(self, margin: float = 0.0) -> float | None:
        """When (monotonic) the budget less ``margin`` runs out; None when unarmed or unbounded."""
        if self.armed_at is None or self.wait is None:
            return None
        return self.armed_at + self.wait + CANCEL_GRACE + DEADLINE_MARGIN - margin

    def _watch(self) -> None:
        assert self.armed_at is not None
        wait = self.wait
        budget = (ACK_TIMEOUT if wait is None else wait) + CANCEL_GRACE + DEADLINE_MARGIN
        if not self._ack.wait(budget) and not self._done.is_set():
            self.expire(f"the event loop did not answer the stop for {budget:.1f} s: a bean is blocking it")
            return
        if wait is None:
            return  # the loop answers, and waiting for ever is what was asked for
        if not self._done.wait(max(0.0, self.armed_at + budget - time.monotonic())):
            self.expire(f"the process did not end within {budget:.1f} s (STOP_WAIT_TIME {wait:g} s + grace)")

    def expire(self, why: str) -> None:
        """Dump every thread's stack to stderr; with ``ends_process``, end the process with status 1."""
        if not self.ends_process:
            sys.stderr.write(f"aiopod: {why}; the stacks follow\n")
            dump_threads()
            return
        if self.final_status is not None:
            # Everything stopped in time and the status is known: only the interpreter's teardown
            # (freeing 100k beans takes a second) is late. End it, and keep the status.
            os._exit(self.final_status)
        try:
            sys.stderr.write(f"aiopod: {why}; the stacks follow, then exit with status 1\n")
            dump_threads()
        finally:
            os._exit(1)  # nothing else ends a process whose main thread is stuck
