"""The ``aiopod`` command's first act: hold the process signals while Python imports the rest.

Importing click and the runtime takes 0.1-0.2 s, and a SIGTERM meanwhile would kill the
process with status -15 (issue 15, item 11). ``hold()`` only records the signals that
arrive (a handler that raised would cut an import in half); the owner of the process
signals (``aiopod.pod._process``) installs its own handlers, then ``take()``s what was
recorded and handles it as if it had just arrived. A command that never runs a pod
``release()``s them: the handlers go back, and what came is sent again.

This module imports nothing but ``signal``: it runs before anything else is loaded.
"""

from __future__ import annotations

import signal
from types import FrameType

#: The signals the owner takes (``aiopod.pod._process.OWNED``), listed here so that
#: holding them imports nothing of the runtime.
HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT)

_caught: list[int] = []
_previous: dict[int, object] = {}


def _record(signum: int, frame: FrameType | None) -> None:
    _caught.append(signum)


def hold() -> None:
    """Record the owned signals instead of acting on them, until ``take()`` or ``release()``."""
    for sig in HELD:
        _previous[sig] = signal.signal(sig, _record)


def take() -> list[int]:
    """The owner's handlers are in place: the signals that came before them, in order (once)."""
    _previous.clear()
    caught = _caught[:]
    del _caught[:]
    return caught


def release() -> None:
    """Nobody took the signals: put the previous handlers back and send again what came."""
    if not _previous:
        return
    for sig, previous in _previous.items():
        if signal.getsignal(sig) is _record:
            signal.signal(sig, previous)  # type: ignore[arg-type]
    for sig in take():
        signal.raise_signal(sig)
