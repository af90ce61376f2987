"""A telnet session's front end: ptpython on the telnet thread, statements on the pod's loop.

The prompt, keys, drawing and completion run on the telnet console's own loop (its
thread); each statement goes to the pod's loop through an evaluator ``Session``, whose
output — print, sys.stdout/stderr, pprint, help, tracebacks, and what the tasks it
starts print — comes back here (from the pod's thread) and is written to this client
only: above the prompt when one is drawn.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from typing import Any

from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.application.current import create_app_session
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.input import Input, create_pipe_input
from prompt_toolkit.output import DummyOutput, Output
from prompt_toolkit.shortcuts import PromptSession
from ptpython.repl import PythonRepl

from ..pod import Pod
from ._completions import complete
from ._remote import build_shared_bindings, disarm, forget_filter_caches
from .evaluator import Evaluator, Outcome, Session


class NamespaceCompleter(Completer):
    """Names, attributes and bean labels from the live namespace, within a time budget.

    prompt_toolkit calls it in a worker thread; nothing of the pod's code runs (see
    ``_completions``), unlike jedi, which would evaluate and hold the GIL for long.
    """

    def __init__(self, pod: Pod, namespace: dict[str, Any]) -> None:
        self.pod = pod
        self.namespace = namespace

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        labels = {b.label for b in list(self.pod.beans) if b.label is not None}
        try:
            items = complete(document.text_before_cursor, self.namespace, labels)
        except RuntimeError:  # the namespace changed size under us: the next key press retries
            return
        for text, start, display, meta in items:
            yield Completion(text, start_position=start, display=display, display_meta=meta)


class SessionOutput:
    """What a session's statements print, gathered from any thread for the telnet loop.

    ``write`` never blocks its caller (the pod's loop, mostly); past ``limit`` unsent
    characters the session is dropped (``on_overflow``), as for a client that stops reading.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, show: Callable[[str], None], limit: int) -> None:
        self.loop = loop
        self.show = show
        self.limit = limit
        self.overflow: Callable[[], None] = lambda: None
        self._chunks: list[str] = []
        self._size = 0
        self._refused = False
        self._lock = threading.Lock()
        self._scheduled = False

    def write(self, text: str) -> int:
        with self._lock:
            if self._size > self.limit:
                self._refused = True
                return len(text)
            self._chunks.append(text)
            self._size += len(text)
            if self._scheduled:
                return len(text)
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self.flush)
        except RuntimeError:  # the telnet loop has ended: the session is gone
            pass
        return len(text)

    def flush(self) -> None:
        """On the telnet loop: write what was gathered."""
        with self._lock:
            text, self._chunks, self._scheduled = "".join(self._chunks), [], False
            refused, self._refused, self._size = self._refused, False, 0
        if text:
            self.show(text)
        if refused:
            self.overflow()


class TelnetRepl(PythonRepl):
    """ptpython for one telnet client; it reads and draws, the evaluator runs the statements."""

    def __init__(
        self, pod: Pod, namespace: dict[str, Any], evaluation: Session, *, input: Input, output: Output
    ) -> None:
        super().__init__(
            get_globals=lambda: namespace,
            _completer=NamespaceCompleter(pod, namespace),
            input=input,
            output=output,
        )
        self.evaluation = evaluation
        #: The statement running on the pod's loop, if any (``sessions()``).
        self.running: str | None = None
        self._asking: asyncio.Task[Any] | None = None
        # Completing on Tab only; the namespace's objects live on the pod's loop.
        self.complete_while_typing = False
        self.confirm_exit = False
        self.prompt_style = "classic"
        self.show_status_bar = False
        self.show_signature = False
        self.show_docstring = False
        self.title = "aiopod"
        # Off the main thread prompt_toolkit polls the output's size twice a second; a
        # telnet client says when its window changes (NAWS), and that resizes the session.
        self.app.terminal_size_polling_interval = None
        disarm(self)

    def _on_input_timeout(self, buff: Any) -> None:
        # ptpython asks jedi for signatures in a worker thread on every key, shown or not:
        # jedi's parsing holds the GIL (the pod's loop waits) and its grammar stayed in the heap.
        if self.show_signature or self.show_docstring:
            super()._on_input_timeout(buff)

    def show(self, text: str) -> None:
        """Write ``text`` to this client: above the prompt when one is drawn."""

        def write() -> None:
            self.app.output.write_raw(text)  # the transport's writer turns \n into \r\n
            self.app.output.flush()

        if self.app.is_running:
            run_in_terminal(write)
        else:
            write()

    async def read_statement(self) -> str:
        """One statement; EOFError on Ctrl-D."""
        while True:
            try:
                text: str = await self.app.run_async(set_exception_handler=False, handle_sigint=False)
            except KeyboardInterrupt:  # Ctrl-C at the prompt clears the line
                self.default_buffer.document = Document()
                continue
            if text and not text.isspace():
                return text

    async def confirm(self, question: str) -> bool:
        """Ask ``question`` (a statement waits for the answer; Ctrl-C interrupts it): True on y/yes."""
        session = PromptSession[str](input=self.app.input, output=self.app.output)
        self._asking = asyncio.current_task()
        try:
            reply = await session.prompt_async(question + " [y/N] ", handle_sigint=False, set_exception_handler=False)
        except (KeyboardInterrupt, EOFError):
            reply = ""
        return reply.strip().lower() in ("y", "yes")

    async def run_session(self, flush: Callable[[], None]) -> None:
        """Read, evaluate on the pod's loop, show, until exit(), stop() or Ctrl-D."""
        while True:
            try:
                text = await self.read_statement()
            except EOFError:
                return
            future = self.evaluation.submit(text)
            self.running = text
            try:
                outcome: Outcome = await asyncio.wrap_future(future)
            finally:
                self.running = None
            if self._asking is not None:
                # An interrupted question is cancelled from the pod's thread: let its prompt
                # let go of the input before ours takes it, or ours would hear nothing.
                await asyncio.wait({self._asking})
                self._asking = None
            flush()  # the statement's output before its outcome
            if outcome.status == "exit":
                return
            if outcome.text is not None:
                self.show(outcome.text + "\n")
            self.current_statement_index += 1


def build_offscreen(pod: Pod, evaluator: Evaluator) -> None:
    """Build one session's REPL for no client and drop it: the imports and caches a first session makes, made now."""
    evaluation = evaluator.session({}, len)
    try:
        with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
            TelnetRepl(pod, {}, evaluation, input=pipe, output=DummyOutput())
    finally:
        evaluation.close()
    build_shared_bindings()  # what a first key press builds
    forget_filter_caches()  # what a first session's end does: its isinstance checks fill abc's caches


__all__ = ["NamespaceCompleter", "SessionOutput", "TelnetRepl", "build_offscreen"]
