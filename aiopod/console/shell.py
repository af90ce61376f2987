"""``aiopod shell``: the pod and a ptpython console on one loop."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from prompt_toolkit.patch_stdout import patch_stdout

from ..pod import Pod, PodConfig, run_pod
from .namespace import HELPERS
from .repl import PodRepl

BANNER = "aiopod console: the pod runs beside this prompt. Helpers:\n"


def history_path() -> Path:
    """``$XDG_STATE_HOME/aiopod/history`` (``~/.local/state/aiopod/history`` by default)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "aiopod" / "history"


@contextmanager
def _logging_above_prompt() -> Iterator[None]:
    """Point stream handlers made before the console at the patched streams.

    A handler keeps the stream it was created with; writing to the real terminal while
    the prompt is drawn garbles it, even with ``patch_stdout``.
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


async def console(pod: Pod, history: Path | None) -> None:
    """Run the console on the running loop until the user leaves; then the pod stops."""
    if history is not None:
        history.parent.mkdir(parents=True, exist_ok=True)
    repl = PodRepl(pod, history_filename=str(history) if history is not None else None)
    pod.interrupt_handlers.append(repl.interrupt)
    try:
        with patch_stdout(raw=True), _logging_above_prompt():
            print(BANNER + HELPERS, flush=True)
            await repl.run_async()
    finally:
        pod.interrupt_handlers.remove(repl.interrupt)


def run_shell(settings: PodConfig, *, history: bool = True, setup: Callable[[Pod], None] | None = None) -> int:
    """Start the pod with a console on its loop; return the exit status when the pod stops.

    ``setup(pod)`` runs before the loop starts (the CLI serves the console socket with it).
    """
    path = history_path() if history else None
    return run_pod(settings, keep_alive=True, guest=lambda pod: console(pod, path), setup=setup)
