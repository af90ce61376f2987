"""What the telnet thread does with the cyclic garbage collector, so that sessions cost beans little.

A session's ptpython is a web of cycles (its bindings, layout and buffers point back
at the REPL), and the collector holds the GIL, stopping the pod's loop, for as long as
a pass takes. Left to itself, the collector ran a full pass every eight sessions or so,
over the whole heap and the ~70k objects those sessions had left: 100 to 300 ms stalls
of the beans (issue 15, item 2). Three things keep the passes short instead:

- ``freeze_base``: what exists once the console is ready (the pod, ptpython,
  prompt_toolkit and what one REPL's building makes for good) is moved out of the
  collector's sight with ``gc.freeze()``, as the local console does after its warm-up;
- ``take_apart``: once a session's connection is gone (its application ended before),
  its REPL, application, layout, controls and buffers let go of what they hold, so
  reference counting frees most of the session at once (0.25-0.5 ms of CPU, in steps
  of at most 0.2 ms). Left in cycles, the same ~3.8k objects made a pass of 4-11 ms
  (about ten times the cost); what the cycles still hold (~500-700 objects: closures of
  key bindings and filters, the session's own) makes the pass ~2.5 ms where it was ~5
  (CPU, measured at load 2-3);
- ``Sweeper``: it takes the closed sessions apart, then one full pass collects their
  rest while it is the only garbage: the pass walks what the freeze left visible
  (what was made since), not the whole heap. A pod whose beans build a large heap after
  the start pays for walking it at each close, as it does at the collector's own passes.

An application that turned the collector off is left alone. The freeze is process-wide,
as the local console's is: the pod's own ``frozen()`` bursts (``aiopod.pod._collector``)
then see an application's freeze and leave it be, and cycles that were alive at the freeze
and die later are never collected (what is frozen is the pod and the console as they start).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any

from prompt_toolkit.application import Application
from prompt_toolkit.layout.controls import BufferControl, UIControl

#: Seconds between a session's connection being lost and the pass that frees the session:
#: sessions closing together share one pass.
SWEEP_DELAY = 0.05


def freeze_base(warm_up: Callable[[], None]) -> None:
    """Run ``warm_up`` (a REPL built and dropped), free its cycles, freeze what stays."""
    if not gc.isenabled():
        warm_up()
        return
    gc.disable()  # what warm_up makes stays in the youngest generation, where one cheap pass finds it
    try:
        warm_up()
    finally:
        gc.collect(0)
        gc.freeze()
        gc.enable()


def take_apart(app: Application[Any], *owners: object) -> None:
    """Empty ``app`` (ended), its layout, controls and buffers, and ``owners`` (the REPL around it).

    Each object lets go of its attributes, so what only the session used is freed by
    reference counting now; what is left in cycles (closures that point at an emptied
    object) is small, for the ``Sweeper``'s pass. An application still running, or still
    waiting for its background tasks (a second cancellation during its clean-up), is left
    whole to the collector. The ``Sweeper`` calls it ``SWEEP_DELAY`` after the connection
    closed: a redraw the application had queued (postponed by at most 10 ms) has run by
    then and found it ended; an emptied one would raise in the loop's callback.
    """
    if app.is_running or getattr(app, "_background_tasks", None):
        return
    parts: list[object] = [*owners, app, app.layout, app.renderer, app.key_processor]
    for container in app.layout.walk():
        parts.append(container)
        control = getattr(container, "content", None)  # a Window's
        if isinstance(control, UIControl):
            parts.append(control)
            if isinstance(control, BufferControl):
                parts.append(control.buffer)
    for part in parts:
        if hasattr(part, "__dict__"):
            vars(part).clear()


class Sweeper:
    """Frees closed sessions on the telnet loop a moment after they close (one pass for a burst)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._handle: asyncio.TimerHandle | None = None
        self._waiting: set[asyncio.Task[None]] = set()
        self._closed_sessions: list[Callable[[], None]] = []
        self._ended = False
        #: Passes run so far.
        self.passes = 0

    def after(self, closed: Coroutine[Any, Any, None], take_apart: Callable[[], None]) -> None:
        """Call ``take_apart`` and sweep once ``closed`` (a writer's ``wait_closed()``) is done.

        Until its connection is lost, asyncio's stream protocol still holds the session's
        task, and through it the session: a pass before that would free nothing.
        """
        if self._ended:  # the console is stopping: nothing sweeps after it
            closed.close()
            return
        task = self.loop.create_task(closed)
        self._waiting.add(task)
        task.add_done_callback(lambda task: self._closed(task, take_apart))

    def _closed(self, task: asyncio.Task[None], take_apart: Callable[[], None]) -> None:
        self._waiting.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:  # a reset connection is still closed
            exc.__traceback__ = None  # its frames (a draw's, the session's) hold the session in a cycle
        if not self._ended:
            self._closed_sessions.append(take_apart)
            if self._handle is None:
                self._handle = self.loop.call_later(SWEEP_DELAY, self._sweep)

    def _sweep(self) -> None:
        self._handle = None
        while self._closed_sessions:
            self._closed_sessions.pop()()  # no name left holding a session during the pass
        if gc.isenabled():
            gc.collect()
            self.passes += 1

    def cancel(self) -> None:
        """No more passes: the console stops."""
        self._ended = True
        self._closed_sessions.clear()
        for task in list(self._waiting):
            task.cancel()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


__all__ = ["SWEEP_DELAY", "Sweeper", "freeze_base", "take_apart"]
