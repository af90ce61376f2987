"""What a remote session's keys may not do, what a finished one must not leave behind, and
what opening one need not cost.

A person at the pod's own terminal may suspend it (Ctrl-Z), open ``$EDITOR`` (Ctrl-X
Ctrl-E, ``v`` in vi mode) or run a shell command (Meta-! in the system toolbar). From
a remote client the same keys would stop every bean (SIGTSTP to the pod's process
group) or start a program on the server's terminal (issue 15, item 1).
"""

from __future__ import annotations

import asyncio
import functools
import sys
from typing import Any

import prompt_toolkit.application.application
import ptpython.python_input
import ptpython.style
from prompt_toolkit.application import Application, get_app, run_in_terminal
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.enums import EditingMode
from prompt_toolkit.filters import Filter
from prompt_toolkit.filters.app import in_editing_mode
from prompt_toolkit.key_binding import KeyPressEvent
from prompt_toolkit.key_binding.bindings.page_navigation import load_page_navigation_bindings
from prompt_toolkit.key_binding.defaults import load_key_bindings
from ptpython.python_input import PythonInput

REFUSED = "aiopod: {what} is off in a remote session: it would act on the server's {target}"


def _tell(app: Application[Any], text: str) -> None:
    def show() -> None:
        app.output.write(text + "\n")
        app.output.flush()

    run_in_terminal(show)


class RemoteApplication(Application[str]):
    """ptpython's application, minus the calls that reach the server's process or terminal."""

    def suspend_to_background(self, suspend_group: bool = True) -> None:
        _tell(self, REFUSED.format(what="Ctrl-Z (suspend)", target="process: every bean would stop"))

    async def run_system_command(self, command: str, *args: Any, **kwargs: Any) -> None:
        _tell(self, REFUSED.format(what="running a system command", target="terminal"))


class RemoteBuffer(Buffer):
    """ptpython's input buffer, minus opening ``$EDITOR`` on the server."""

    def open_in_editor(self, validate_and_handle: bool = False) -> asyncio.Task[None]:
        async def refuse() -> None:
            _tell(get_app(), REFUSED.format(what="the editor (Ctrl-X Ctrl-E)", target="terminal"))

        return asyncio.ensure_future(refuse())


def disarm(repl: PythonInput) -> None:
    """Make ``repl`` (built but not running) safe for a remote client's keys.

    ptpython builds its application and buffer itself; switching their class keeps
    all it set up and replaces only the methods above. The flags turn the bindings
    off as well, so the refusals are a second line.
    """
    repl.enable_system_bindings = False
    repl.enable_open_in_editor = False
    repl.enable_pager = False
    repl.app.__class__ = RemoteApplication
    repl.default_buffer.__class__ = RemoteBuffer

    # The keys still answer, so the client learns why nothing happened.
    @repl.extra_key_bindings.add("c-z")
    def _(event: KeyPressEvent) -> None:
        event.app.suspend_to_background()

    @repl.extra_key_bindings.add("c-x", "c-e")
    def _(event: KeyPressEvent) -> None:
        event.current_buffer.open_in_editor()


def forget_filter_caches() -> None:
    """Drop what prompt_toolkit's long-lived filters remember of finished sessions.

    ``Filter.__and__``/``__or__`` memoise their result on the left operand: a module
    filter such as ``~is_done`` combined with one session's ``Condition`` keeps that
    session (its REPL, namespace and screen, ~3.6 MB) alive for ever (issue 15, item 2).
    The memo only saves rebuilding a small object, so forgetting it is safe.
    """
    seen: set[int] = set()

    def clear(f: Filter) -> None:
        while f is not None and id(f) not in seen:
            seen.add(id(f))
            f._and_cache.clear()
            f._or_cache.clear()
            f = f._invert_result  # type: ignore[assignment]

    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] in ("prompt_toolkit", "ptpython") and module is not None:
            for value in list(vars(module).values()):
                if isinstance(value, Filter):
                    clear(value)
    for mode in EditingMode:
        clear(in_editing_mode(mode))  # memoised, so as long-lived as a module filter


_code_styles = functools.cache(ptpython.style.get_all_code_styles)


def share_code_styles() -> None:
    """Build ptpython's 50 code styles once per process instead of once per session.

    They were two thirds of opening a session (120 of 176 ms, profiled) and the styles
    are immutable; each REPL still gets a dict of its own to add schemes to.
    """
    ptpython.python_input.get_all_code_styles = lambda: dict(_code_styles())  # type: ignore[attr-defined]


_default_bindings = functools.cache(load_key_bindings)
_page_bindings = functools.cache(load_page_navigation_bindings)


def share_default_bindings() -> None:
    """Build prompt_toolkit's default key bindings once per process instead of once per application.

    Every ``Application`` builds its own ~650 emacs, vi, mouse and page bindings: three
    quarters of building a session's REPL (52 of 69 ms, profiled), and their objects were
    most of the garbage a closed session left for the collector. The bindings keep no
    state (their handlers act on ``event.app``) and are never changed once built, so the
    sessions, and their confirmation prompts, can share one set.
    """
    module: Any = prompt_toolkit.application.application
    module.load_key_bindings = _default_bindings
    module.load_page_navigation_bindings = _page_bindings


def build_shared_bindings() -> None:
    """Build now the lookup tables the shared bindings make at a first key press.

    They live as long as the process (~1,200 objects): built before the console's heap is
    frozen (``aiopod.console._sweeper``), no collector pass has to walk them again.
    """
    for bindings in (_default_bindings(), _page_bindings()):
        bindings.bindings  # noqa: B018 - the property builds and caches the merged table


__all__ = [
    "RemoteApplication",
    "RemoteBuffer",
    "build_shared_bindings",
    "disarm",
    "forget_filter_caches",
    "share_code_styles",
    "share_default_bindings",
]
