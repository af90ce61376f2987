"""aiopod's own tests use the subprocess helpers that ``aiopod.testing`` gives users."""

from __future__ import annotations

import signal
import time

from aiopod.testing.process import Proc, aiopod, run

__all__ = ["HARD_MARGIN", "Proc", "aiopod", "run", "stop"]

#: The README's promise (Stopping): a stop takes at most STOP_WAIT_TIME + 3 s (cancel grace
#: and margin); past that the stop budget ends the process with status 1.
HARD_MARGIN = 3.0


def stop(proc: Proc, sig: int = signal.SIGTERM, ready: str | None = None, timeout: float = 20.0) -> tuple[int, float]:
    """Wait for ``ready`` (if given), send ``sig``: ``(exit status, seconds from the signal to the exit)``."""
    if ready is not None:
        proc.wait_for(ready)
    sent = proc.signal(sig)
    code = proc.wait(timeout)
    return code, time.monotonic() - sent
