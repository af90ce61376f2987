"""Loop health: lag measured on the loop, blocking caught from a helper thread."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from typing import NamedTuple

logger = logging.getLogger("aiopod.health")
#: Frames of the loop machinery itself (uvloop's are C: runners.py is the last Python one).
_LOOP_FILES = ("asyncio/runners.py", "asyncio/base_events.py", "asyncio/events.py", "asyncio/tasks.py")


class Health(NamedTuple):  # not a dataclass: building one costs ~1 ms at every start (README row 3)
    """A snapshot of the loop's health, for the console and for probes."""

    lag: float  # seconds the last heartbeat ran late
    max_lag: float  # the worst lag seen since the pod started
    blocked_for: float  # seconds since the loop last ran a heartbeat (0 when it keeps up)
    blocked_episodes: int  # how many times the loop was blocked past the threshold

    @property
    def ok(self) -> bool:
        return self.blocked_for == 0.0


class LoopMonitor:
    """A heartbeat on the loop every ``interval`` s, watched by a thread.

    When the heartbeat is ``threshold`` s late, the thread samples the loop thread's
    stack with ``sys._current_frames()`` (so it works on any loop, uvloop included) and
    logs one WARNING for the episode, then one line when the loop runs again.
    """

    def __init__(self, threshold: float = 1.0, interval: float = 0.1, *, enabled: bool = True) -> None:
        #: Off (``WATCHDOG = False``, ``--no-watchdog``): no heartbeat, no thread, and
        #: ``health()`` reports zero lag.
        self.enabled = enabled
        self.threshold = threshold
        self.interval = interval
        self.lag = 0.0
        self.max_lag = 0.0
        self.episodes = 0
        self._last_beat = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start beating on ``loop`` (call from the loop's thread) and start the watcher."""
        if not self.enabled:
            return
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._last_beat = time.monotonic()
        self._timer = loop.call_later(self.interval, self._beat, loop.time() + self.interval)
        self._thread = threading.Thread(target=self._watch, name="aiopod-loop-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._timer is not None:
            self._timer.cancel()

    def health(self) -> Health:
        if self._timer is None:  # not started, or off
            return Health(self.lag, self.max_lag, 0.0, self.episodes)
        since = time.monotonic() - self._last_beat
        blocked = since if since > self.interval + self.threshold else 0.0
        return Health(self.lag, self.max_lag, blocked, self.episodes)

    def _beat(self, due: float) -> None:
        assert self._loop is not None
        now = self._loop.time()
        self.lag = max(0.0, now - due)
        self.max_lag = max(self.max_lag, self.lag)
        self._last_beat = time.monotonic()
        if not self._stopped.is_set():
            self._timer = self._loop.call_later(self.interval, self._beat, now + self.interval)

    def _watch(self) -> None:
        episode_start: float | None = None
        while not self._stopped.wait(min(self.interval, self.threshold) / 2):
            beat = self._last_beat
            late = time.monotonic() - beat - self.interval
            if episode_start is None and late > self.threshold:
                episode_start = beat
                self.episodes += 1
                logger.warning(
                    "the event loop has been blocked for %.1f s; the code blocking it:\n%s",
                    late, self._stack(),
                )  # fmt: skip
            elif episode_start is not None and beat > episode_start:
                logger.warning("the event loop ran again after being blocked for %.1f s", beat - episode_start)
                episode_start = None

    def _stack(self) -> str:
        frame = sys._current_frames().get(self._loop_thread)
        if frame is None:
            return "  (the loop thread is gone)"
        frames = traceback.extract_stack(frame)
        # Start at the callback the loop is running: the loop's own frames say nothing.
        starts = [i for i, f in enumerate(frames) if f.filename.endswith(_LOOP_FILES)]
        if starts:
            frames = traceback.StackSummary.from_list(frames[starts[-1] + 1 :])
        return "".join(frames.format()).rstrip()
