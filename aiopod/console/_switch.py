"""How long a console's thread may keep the GIL when the pod's loop wants it.

Python hands the GIL over every 5 ms by default; a console thread drawing beside the
beans would keep their loop waiting that long. Measured on 2 loaded cores: typing at
15 keys/s into the local console, the beans' p99 lag went from 16-18 ms to 8-12 ms with
1 ms (the console's CPU time did not change); 50 telnet sessions opened and closed,
heartbeat p99 12-18 ms with 1 ms against 22-23 ms without. The interval is the process's:
the local console and the telnet thread share one setting, put back when the last leaves.

The switch interval only helps while the console thread is on a CPU: when the host
takes the CPU from it in the middle of a render, it keeps the GIL until it is given a
CPU again, and the beans wait that long (renders of 4-5 ms of CPU were seen taking
17-43 ms while the beans waited). A thread that runs in short stretches and then sleeps
is rarely taken off its CPU (it gives the CPU up first, the GIL with it), so the local
console's thread, and the telnet thread that draws every remote session, sleep for
``BREATH`` after each ``BREATH_EVERY`` of their CPU time (``breathing()``, ``breathe()``
called between the steps of a render). Measured beside
a 5 ms heartbeat on this 2-core host, with a thread doing 4 ms of CPU at 15/s (eight
alternating pairs of 6 s, load 2.5-3.6): the heartbeat's p99 lag 3.8-8.5 ms (median 6.6)
-> 2.3-5.7 ms (4.1), its max 7.2-24.3 ms (14.4) -> 4.5-15.1 ms (9.5), worse in 2 pairs.
Typing into ``aiopod shell`` (README row 10, load 1.2-4.3, alternately with and without):
max under 20 ms in 6 of 10 runs instead of 3, p99 3.4-7.4 ms instead of 5.0-11.6.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from collections.abc import Iterator

SWITCH_INTERVAL = 0.001
#: A breathing thread sleeps after this much of its CPU time...
BREATH_EVERY = 0.0005
#: ... for this long, the GIL let go.
BREATH = 0.0001

_lock = threading.Lock()
_holders = 0
_saved = 0.0


@contextlib.contextmanager
def short_switch_interval() -> Iterator[None]:
    """At most ``SWITCH_INTERVAL`` while the block runs (a shorter one set by the application stays)."""
    global _holders, _saved
    with _lock:
        if _holders == 0:
            _saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_saved, SWITCH_INTERVAL))
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                sys.setswitchinterval(_saved)


class _Breath(threading.local):
    due = math.inf  # this thread's CPU time at which it sleeps next (never, unless breathing)


_breath = _Breath()


@contextlib.contextmanager
def breathing() -> Iterator[None]:
    """In this thread, ``breathe()`` sleeps for ``BREATH`` after each ``BREATH_EVERY`` of CPU."""
    _breath.due = time.thread_time() + BREATH_EVERY
    try:
        yield
    finally:
        _breath.due = math.inf


def breathe() -> None:
    """A point where a breathing thread that has run its stretch lets go of the GIL and the CPU."""
    due = _breath.due
    if due != math.inf and time.thread_time() >= due:
        time.sleep(BREATH)
        _breath.due = time.thread_time() + BREATH_EVERY


__all__ = ["BREATH", "BREATH_EVERY", "SWITCH_INTERVAL", "breathe", "breathing", "short_switch_interval"]
