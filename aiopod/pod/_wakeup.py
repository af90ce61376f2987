"""Hearing signals the moment they arrive, from a thread: the C handler's wake-up fd."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable


class Wakeup:
    """A thread that hears each signal as it arrives, even while the main thread is stuck in C.

    Python runs signal handlers in the main thread between bytecodes; an import or a bean
    stuck in C code never gets there. The C-level handler still writes the signal number
    to the wake-up fd, which this thread reads (and forwards to a previous wake-up fd).
    """

    def __init__(self, heard: Callable[[int], None]) -> None:
        self._heard = heard
        self._reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)
        self._fd = self._writer.fileno()
        self._previous = signal.set_wakeup_fd(self._fd, warn_on_full_buffer=False)
        threading.Thread(target=self._run, name="aiopod-signals", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                data = self._reader.recv(64)
            except OSError:
                return
            if not data:
                return
            if self._previous >= 0:
                try:
                    os.write(self._previous, data)
                except OSError:
                    pass
            for signum in data:
                self._heard(signum)

    def close(self) -> None:
        current = signal.set_wakeup_fd(self._previous)
        if current not in (self._fd, -1):
            signal.set_wakeup_fd(current)  # someone else's since: leave theirs in place
        self._writer.close()
