"""``aiopod shell``: the pod on the main thread's loop, the console front end in a thread beside it."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from ..pod import Pod, PodConfig, run_pod
from ..pod.pod import CANCEL_GRACE
from ._switch import short_switch_interval
from .evaluator import Evaluator
from .frontend import Frontend, TerminalWriter, ptpython_config_path
from .namespace import HELPERS, build_namespace

BANNER = "aiopod console: the pod runs beside this prompt. Helpers:\n"


def history_path() -> Path:
    """``$XDG_STATE_HOME/aiopod/history`` (``~/.local/state/aiopod/history`` by default)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "aiopod" / "history"


@contextmanager
def _logging_above_prompt() -> Iterator[None]:
    """Point stream handlers made before the console at the routed streams.

    A handler keeps the stream it was created with; writing to the real terminal while
    the prompt is drawn garbles it.
    """
    moved = []
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.__stderr__, sys.__stdout__):
            moved.append((handler, handler.stream))
            handler.setStream(sys.stderr if handler.stream is sys.__stderr__ else sys.stdout)
    try:
        yield
    finally:
        for handler, stream in moved:
            handler.setStream(stream)


async def console(pod: Pod, history: Path | None, config: Path | None) -> None:
    """Run the console until the person leaves (then the pod stops) or the pod stops."""
    if history is not None:
        history.parent.mkdir(parents=True, exist_ok=True)
    assert sys.__stdout__ is not None
    writer = TerminalWriter(sys.__stdout__)
    evaluator = Evaluator.for_pod(pod)
    evaluator.fallback_stdout = evaluator.fallback_stderr = writer  # type: ignore[assignment]
    session = evaluator.session(build_namespace(pod), stdout=writer.write)
    evaluator.foreground = session  # the terminal's Ctrl-C is for this session's statements
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def finish() -> None:
        if not ended.done():
            ended.set_result(None)

    def on_done() -> None:
        try:
            loop.call_soon_threadsafe(finish)
        except RuntimeError:  # the pod's loop has closed already
            pass

    frontend = Frontend(pod, session, writer, history=history, config=config, banner=BANNER + HELPERS + "\n")
    # The console thread cannot receive signals; the main thread forwards terminal resizes.
    previous_winch = signal.signal(signal.SIGWINCH, lambda signum, frame: frontend.resized())
    try:
        with _logging_above_prompt(), short_switch_interval():
            frontend.start(on_done)
            await asyncio.shield(ended)
    finally:
        frontend.leave()
        if not ended.done():  # the pod stops: let the console put the terminal back first
            await asyncio.wait({ended}, timeout=CANCEL_GRACE)
        signal.signal(signal.SIGWINCH, previous_winch)
        session.close()
        evaluator.close()


def run_shell(
    settings: PodConfig,
    *,
    history: bool = True,
    ptpython_config: Path | Literal["default"] | None = "default",
    setup: Callable[[Pod], None] | None = None,
) -> int:
    """Start the pod with the console beside it; return the exit status when the pod stops.

    ``ptpython_config``: ``"default"`` reads ptpython's own config file if there is one
    (``$XDG_CONFIG_HOME/ptpython/config.py``), a path reads that file, None reads none.
    ``setup(pod)`` runs before the loop starts (the CLI serves the console socket with it).
    """
    path = history_path() if history else None
    config = ptpython_config_path() if ptpython_config == "default" else ptpython_config
    return run_pod(settings, keep_alive=True, guest=lambda pod: console(pod, path, config), setup=setup)
