"""The local console's front end: ptpython in a thread of its own, off the pod's loop.

Everything the console does for the person — the prompt_toolkit application, keys,
drawing, lexing, completion, history, validation — runs here, on the console thread's
own event loop. Only the statements go to the pod's loop, through a ``Session`` of the
evaluator (see ``evaluator.py``). The terminal is shared through ``TerminalWriter``: the
pod's output and the statements' output go above the prompt, partial lines included.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from prompt_toolkit.application import Application
from prompt_toolkit.application.current import set_app
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import FormattedText, PygmentsTokens, merge_formatted_text, to_formatted_text
from prompt_toolkit.output import Output, create_output
from prompt_toolkit.shortcuts import print_formatted_text
from prompt_toolkit.utils import get_cwidth
from ptpython.completer import PythonCompleter
from ptpython.repl import PythonRepl
from ptpython.utils import unindent_code
from pygments.lexers import PythonLexer, PythonTracebackLexer  # type: ignore[import-untyped]

from ..pod import Pod
from . import _layout, _screen
from ._switch import breathe, breathing
from .completion import BeanLabelCompleter, ConsoleCompleter, NamespaceCompleter
from .evaluator import Outcome, Session

#: Output that arrives while the prompt is drawn is gathered for this long, then drawn
#: above the prompt in one redraw (a chatty bean would otherwise cost a redraw a line).
FLUSH_DELAY = 0.02
#: Lines completed and lexed before the first prompt, so that the first keys cost no more than the next.
#: Inside a string ptpython completes paths with a grammar it compiles on first use: 22 ms
#: of the console thread's CPU on the first letter typed in a string, if not paid here.
WARM_UP = ("pod.", "asyncio.sl", "x = [pod.beans, 'text', 1.5]", "x = {'n")


class TerminalWriter:
    """The terminal, shared by every thread: text goes above the prompt when one is drawn.

    prompt_toolkit's ``patch_stdout`` erases the prompt and redraws it at the cursor, so a
    line without its newline is overwritten by the next redraw. Here such an open line is
    finished with a newline on screen and rewritten in place (cursor up) when more of it
    comes, until its real newline arrives.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lock = threading.RLock()
        self._app: Application[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[str] = []
        self._scheduled = False
        self._line = ""  # text after the last newline written while no prompt was drawn
        self._open = ""  # the unfinished line drawn above the prompt

    # -- any thread -------------------------------------------------------------------

    def write(self, text: str) -> int:
        with self.lock:
            if self._app is None:
                self._direct(text)
            else:
                self._pending.append(text)
                if not self._scheduled and self._loop is not None:
                    self._scheduled = True
                    self._loop.call_soon_threadsafe(self._loop.call_later, FLUSH_DELAY, self._flush)
        return len(text)

    def flush(self) -> None:
        with self.lock:
            if self._app is None:
                self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return self.stream.encoding

    def _direct(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
        _, newline, tail = text.rpartition("\n")
        self._line = tail if newline else self._line + tail

    # -- the console thread -----------------------------------------------------------

    def prompt_shown(self, app: Application[Any], loop: asyncio.AbstractEventLoop) -> None:
        """The prompt is about to be drawn: from now on, output goes above it."""
        with self.lock:
            if self._line:  # finish the open line on screen; it is redrawn above the prompt
                self.stream.write("\n")
                self.stream.flush()
                self._open, self._line = self._line, ""
            self._app, self._loop = app, loop

    def prompt_hidden(self) -> None:
        """The prompt is gone (a statement was accepted): output goes straight to the terminal."""
        with self.lock:
            self._app = None
            self._open = ""
            pending, self._pending = self._pending, []
            self._scheduled = False
            if pending:
                self._direct("".join(pending))

    def _flush(self) -> None:
        with self.lock:
            app = self._app
            self._scheduled = False
            if app is None or not self._pending:
                return
            if not app.is_running or app._running_in_terminal:  # ptpython's own dialogs: later
                self._scheduled = True
                asyncio.get_running_loop().call_later(FLUSH_DELAY, self._flush)
                return
            text, self._pending = "".join(self._pending), []
            with set_app(app):
                app.renderer.erase()
                self._above(text, app.output.get_size().columns)
                app.renderer.reset()
                app._request_absolute_cursor_position()
                app._redraw()

    def _above(self, text: str, columns: int) -> None:
        """Write ``text`` where the prompt was; leave the cursor at the start of a new line."""
        if self._open:
            rows = max(1, -(-get_cwidth(self._open) // max(columns, 1)))
            self.stream.write(f"\x1b[{rows}A\r")  # back to the start of the open line
            text = self._open + text
        tail = text.rpartition("\n")[2]
        self._open = tail.rpartition("\r")[2]
        self.stream.write(text if not tail else text + "\n")
        self.stream.flush()


class ConsoleRepl(PythonRepl):
    """ptpython's input, configured by the person; aiopod adds label completion, nothing else."""

    def __init__(self, pod: Pod, namespace: dict[str, Any], history: Path | None, output: Output) -> None:
        _layout.install()  # a third of each redraw's CPU, which the beans feel through the GIL
        _screen.install()  # the screen diff and the per-cell fills: a tenth of a redraw
        super().__init__(
            get_globals=lambda: namespace,
            history_filename=str(history) if history is not None else None,
            output=output,
        )
        jedi = PythonCompleter(self.get_globals, self.get_locals, lambda: self.enable_dictionary_completion)
        self.completer = BeanLabelCompleter(pod, NamespaceCompleter(self.get_globals, jedi))
        # aiopod's look when the person has no ptpython config: the classic prompt, no bar.
        self.prompt_style = "classic"
        self.show_status_bar = False
        self.confirm_exit = False
        self.title = "aiopod"
        # Off the main thread prompt_toolkit polls the terminal's size twice a second;
        # the main thread forwards SIGWINCH instead (``Frontend.resized``).
        self.app.terminal_size_polling_interval = None
        self.default_buffer.completer = ConsoleCompleter(self._completer, self._answers_at_once)
        process_keys = self.app.key_processor.process_keys

        def breathe_then_process_keys() -> None:  # a key's work starts a stretch (see _switch.py)
            breathe()
            process_keys()

        self.app.key_processor.process_keys = breathe_then_process_keys  # type: ignore[method-assign]

    def _answers_at_once(self, document: Document, complete_event: CompleteEvent) -> bool:
        # ``self.completer`` may be the person's own (ptpython config): theirs runs in a thread.
        answers = getattr(self.completer, "answers_at_once", None)
        return answers is not None and bool(answers(document, complete_event))

    def _on_input_timeout(self, buff: Any) -> None:
        # ptpython asks jedi for signatures in a worker thread on every key, shown or not.
        if self.show_signature or self.show_docstring:
            super()._on_input_timeout(buff)

    def warm_up(self) -> None:
        """Pay the lexer's and the completer's first use now, before the first prompt."""
        for text in WARM_UP:
            document = Document(text)
            list(self._completer.get_completions(document, CompleteEvent()))
            self._lexer.lex_document(document)(0)


@contextlib.contextmanager
def _collector_off() -> Iterator[None]:
    """The collector off for a burst of objects that all stay, then everything frozen."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        # What was there before: parso turns the collector on after reading its cache.
        if enabled:
            gc.enable()
        else:
            gc.disable()


def ptpython_config_path() -> Path:
    """Where ptpython reads its config: ``$PTPYTHON_CONFIG_HOME`` or ``$XDG_CONFIG_HOME/ptpython``."""
    folder = os.environ.get("PTPYTHON_CONFIG_HOME")
    if not folder:
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        folder = os.path.join(base, "ptpython")
    return Path(folder) / "config.py"


def run_ptpython_config(repl: PythonRepl, path: Path) -> str | None:
    """Run the config file's ``configure(repl)`` as ptpython does; the error text if it fails."""
    try:
        namespace: dict[str, Any] = {"__file__": str(path), "__name__": "__ptpython_config__"}
        exec(compile(path.read_bytes(), str(path), "exec"), namespace, namespace)
        configure = namespace.get("configure")
        if callable(configure):
            configure(repl)
    except Exception as exc:  # the person's file: say what broke, start without the rest of it
        return f"aiopod: the ptpython config {path} failed, the console starts without the rest of it:\n" + "".join(
            traceback.format_exception(exc)
        )
    return None


class Frontend:
    """The console thread: reads statements, sends them to the session, shows their outcome."""

    def __init__(
        self,
        pod: Pod,
        session: Session,
        writer: TerminalWriter,
        *,
        history: Path | None,
        config: Path | None,
        banner: str,
    ) -> None:
        self.pod = pod
        self.session = session
        self.writer = writer
        self.history = history
        self.config = config
        self.banner = banner
        self.repl: ConsoleRepl | None = None
        self.done = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._leaving = False
        self._on_done: Callable[[], object] | None = None
        self.thread = threading.Thread(target=self._run, name="aiopod-console", daemon=True)

    def start(self, on_done: Callable[[], object]) -> None:
        """Start the console thread; ``on_done()`` is called in it when the console ends."""
        self._on_done = on_done
        self.thread.start()

    def leave(self) -> None:
        """End the console from any thread (the pod is stopping)."""
        self._leaving = True
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._exit_app)
            except RuntimeError:  # the console loop has ended already
                pass

    def resized(self) -> None:
        """The terminal changed size (SIGWINCH, seen by the main thread)."""
        loop, repl = self._loop, self.repl
        if loop is not None and repl is not None:
            try:
                loop.call_soon_threadsafe(repl.app._on_resize)
            except RuntimeError:
                pass

    def _exit_app(self) -> None:
        if self.repl is not None and self.repl.app.is_running and not self.repl.app.future.done():  # type: ignore[union-attr]
            self.repl.app.exit(exception=EOFError)

    def _run(self) -> None:
        try:
            with breathing():  # short stretches of the GIL while it draws (see _switch.py)
                asyncio.run(self._main())
        finally:
            self.done.set()
            if self._on_done is not None:
                self._on_done()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        output = create_output(stdout=sys.__stdout__)
        self.writer.write(self.banner)
        repl = self.repl = ConsoleRepl(self.pod, self.session.namespace, self.history, output)
        if self.config is not None and self.config.is_file():
            error = run_ptpython_config(repl, self.config)
            if error:
                self.writer.write(error)
        self._warm_up(repl)
        while not self._leaving:
            try:
                text = await self._read(repl)
            except EOFError:
                return
            outcome = await asyncio.wrap_future(self.session.submit(text))
            self._show(repl, outcome)
            if outcome.status == "exit":
                return

    @staticmethod
    def _warm_up(repl: ConsoleRepl) -> None:
        """The lexer's and the completers' first use before the first prompt, then a freeze.

        Everything made so far — pod, ptpython, prompt_toolkit — lives as long as the
        console: frozen out of the collector's way, it is never traced again. Measured while
        typing: without the freeze a full collection held the GIL for 0.7 s; with it, none.
        The collector is off meanwhile (what is made here all stays).

        jedi is not warmed up: it answers only the Tabs the namespace completer cannot
        (see completion.py). Its first completion loads its stubs (0.3-1 s, with C calls
        that hold the GIL for up to 300 ms): before the prompt it made the first prompt
        2.8x slower than ptpython's; imported in the background after the prompt it cost
        the idle console 7 -> 17 ms of lag. So it waits for the first Tab that needs it.
        """
        with _collector_off():
            repl.warm_up()

    async def _read(self, repl: ConsoleRepl) -> str:
        """One statement; EOFError on Ctrl-D (or when the pod stops)."""
        app = repl.app
        last_mode = app.vi_state.input_mode

        def pre_run() -> None:
            if repl.vi_keep_last_used_mode:
                app.vi_state.input_mode = last_mode
            elif repl.vi_start_in_navigation_mode:
                from prompt_toolkit.key_binding.vi_state import InputMode

                app.vi_state.input_mode = InputMode.NAVIGATION

        while True:
            if self._leaving:
                raise EOFError
            self.writer.prompt_shown(app, asyncio.get_running_loop())
            try:
                text: str = await app.run_async(pre_run=pre_run, set_exception_handler=False, handle_sigint=False)
            except KeyboardInterrupt:  # Ctrl-C at the prompt clears the line
                repl.signatures = []
                repl.default_buffer.document = Document()
                continue
            finally:
                self.writer.prompt_hidden()
            if text.lstrip().startswith("\x1a"):
                raise EOFError
            text = unindent_code(text)
            if text and not text.isspace():
                if repl.insert_blank_line_after_input:
                    self.writer.write("\n")
                return text

    def _show(self, repl: ConsoleRepl, outcome: Outcome) -> None:
        """The value or the traceback, highlighted with the person's style."""
        if outcome.text is None:
            return
        if outcome.plain:
            text: Any = FormattedText([("", outcome.text)])
        elif outcome.status == "ok":
            body = PygmentsTokens(list(PythonLexer().get_tokens(outcome.text)))
            text = merge_formatted_text([repl.get_output_prompt(), body])
        elif outcome.text.startswith("Traceback") or "\n" in outcome.text:
            text = PygmentsTokens(list(PythonTracebackLexer().get_tokens(outcome.text)))
        else:
            text = FormattedText([("", outcome.text)])
        if not repl.enable_syntax_highlighting:
            text = FormattedText([("", "".join(t for _, t, *_ in to_formatted_text(text)))])
        with self.writer.lock:
            print_formatted_text(
                text,
                style=repl._current_style,
                style_transformation=repl.style_transformation,
                include_default_pygments_style=False,
                output=repl.app.output,
            )
            if repl.insert_blank_line_after_output:
                repl.app.output.write("\n")
            repl.app.output.flush()


__all__ = ["ConsoleRepl", "Frontend", "TerminalWriter", "ptpython_config_path", "run_ptpython_config"]
