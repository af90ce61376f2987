"""``aiopod attach``: ptpython drawn in this process, statements evaluated in the pod.

The pod never renders anything for a session: this client runs the prompt, the keys,
the history and the user's ptpython config, and sends statements, completion requests
and interrupts over the pod's console socket (:mod:`aiopod.console.protocol`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import socket
import sys
import termios
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import PygmentsTokens, merge_formatted_text
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.shortcuts import PromptSession, print_formatted_text
from ptpython.repl import PythonRepl
from pygments.lexers import PythonLexer, PythonTracebackLexer  # type: ignore[import-untyped]

from ..pod.errors import AttachError
from . import _layout, _screen, protocol
from .frontend import ptpython_config_path, run_ptpython_config
from .pods import receive, request

#: How long a completion may take before the prompt goes on without it.
COMPLETION_TIMEOUT = 1.0


def history_path(name: str) -> Path:
    """``$XDG_STATE_HOME/aiopod/attach/<name>.history``: one history per pod name."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    safe = re.sub(r"[^\w.-]", "_", name) or "pod"
    return Path(state) / "aiopod" / "attach" / f"{safe}.history"


class SessionEnded(Exception):
    """The connection to the pod ended while the prompt was waiting."""


class RemoteCompleter(Completer):
    """Asks the pod (prompt_toolkit calls this in a worker thread)."""

    def __init__(self, client: AttachClient) -> None:
        self.client = client

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        items = self.client.complete(document.text_before_cursor, complete_event.completion_requested)
        for text, start, display, meta in items:
            yield Completion(text, start_position=start, display=display, display_meta=meta)


class AttachClient:
    """One session: the socket, the prompt, and what the pod sends back."""

    def __init__(self, path: Path, *, history: bool = True, ptpython_config: Path | None = None) -> None:
        self.path = path
        self.use_history = history
        self.ptpython_config = ptpython_config
        self.welcome: dict[str, Any] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.ended = asyncio.Event()
        self.farewell: str | None = None  # why the pod ended the session (None: the user left)
        self.signalled: str | None = None
        self.repl: PythonRepl | None = None
        self._at_prompt = False
        self.left = False  # the user ended the session (exit(), Ctrl-D)

    # -- connecting
    def connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10.0)
        try:
            sock.connect(str(self.path))
        except PermissionError:
            sock.close()
            raise AttachError(f"{self.path}: permission denied (attach as the pod's user or root)") from None
        except OSError as exc:
            sock.close()
            raise AttachError(f"cannot connect to {self.path}: {exc.strerror or exc}") from None
        return sock

    def handshake(self) -> tuple[socket.socket, dict[str, Any]]:
        """Connect and say hello, blocking: the pod's answer is read even if it closed at once.

        (Over asyncio, a hello written after a refusal fails with EPIPE and takes the unread
        refusal with it.)
        """
        sock = self.connect()
        try:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(protocol.encode(protocol.hello("session", term=os.environ.get("TERM", ""))))
            message = receive(sock)
        except (protocol.ProtocolError, OSError) as exc:
            sock.close()
            raise AttachError(f"{self.path}: no answer from the pod ({exc or 'timeout'})") from None
        if message["type"] == "error":
            sock.close()
            raise AttachError(f"{self.path}: the pod refused: {message.get('message')}")
        if message["type"] != "welcome":
            sock.close()
            raise AttachError(f"{self.path}: unexpected answer {message['type']!r}")
        return sock, message

    async def open(self) -> None:
        sock, self.welcome = self.handshake()
        sock.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=protocol.MAX_FRAME)
        self.writer = writer
        self._reader = asyncio.create_task(self._read(reader))

    def send(self, message: dict[str, Any]) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(protocol.encode(message))

    async def call(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send a request with a fresh id and wait for its answer (or the end of the session)."""
        assert self.loop is not None
        number = message["id"] = next(self._ids)
        future = self._waiting[number] = self.loop.create_future()
        self.send(message)
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            await asyncio.wait({future, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            self._waiting.pop(number, None)
        if not future.done():
            raise SessionEnded
        answer: dict[str, Any] = future.result()
        return answer

    def complete(self, text: str, requested: bool) -> list[tuple[str, int, str, str]]:
        """Completions from the pod; called from prompt_toolkit's completion thread."""
        if self.loop is None or self.ended.is_set():
            return []
        ask = {"type": "complete", "text": text, "requested": requested}
        future = asyncio.run_coroutine_threadsafe(self.call(ask), self.loop)
        try:
            answer = future.result(COMPLETION_TIMEOUT)
        except Exception:  # slow, or the session ended: no completions this time
            future.cancel()
            return []
        return [(str(a), int(b), str(c), str(d)) for a, b, c, d in answer.get("items", [])]

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                message = await protocol.read_frame(reader)
                if message is None:
                    self.farewell = self.farewell or "the pod went away (connection closed)"
                    return
                kind = message["type"]
                if kind == "output":
                    self.show(str(message.get("data", "")), message.get("stream") == "stderr")
                elif kind in ("bye", "error"):
                    self.farewell = str(message.get("message") or "the pod ended the session")
                    return
                elif kind == "ask":
                    self._ask = asyncio.create_task(self._answer(message))
                else:
                    future = self._waiting.get(message.get("id", -1))
                    if future is not None and not future.done():
                        future.set_result(message)
        except (protocol.ProtocolError, OSError) as exc:
            self.farewell = f"the connection to the pod broke ({exc})"
        finally:
            self.ended.set()
            if self.repl is not None and self._at_prompt and self.repl.app.is_running:
                self.repl.app.exit(exception=SessionEnded())

    def show(self, text: str, error: bool = False) -> None:
        """Write what the pod sent: above the prompt while it is drawn, else straight out."""
        stream = sys.__stderr__ if error else sys.__stdout__
        if stream is None:
            return

        def write() -> None:
            stream.write(text)
            stream.flush()

        if self._at_prompt and self.repl is not None and self.repl.app.is_running:
            self._printing = run_in_terminal(write)  # the prompt is hidden, then drawn again below
        else:
            write()

    async def _answer(self, message: dict[str, Any]) -> None:
        """The pod asks a yes/no question (``stop()`` from a remote session)."""
        try:
            with patch_stdout(raw=True):
                reply: str = await PromptSession[str]().prompt_async(str(message.get("question", "?")) + " [y/N] ")
        except (KeyboardInterrupt, EOFError):
            reply = ""
        self.send({"type": "answer", "id": message.get("id"), "value": reply.strip().lower() in ("y", "yes")})

    # -- the prompt
    def make_repl(self) -> PythonRepl:
        name = str(self.welcome.get("name", "pod"))
        history = history_path(name) if self.use_history else None
        if history is not None:
            history.parent.mkdir(parents=True, exist_ok=True)
        _layout.install()  # the local console's cheaper redraws, the same bytes: this client shares
        _screen.install()  # the pod's CPUs (tests/console/test_layout.py, test_screen.py)
        repl = PythonRepl(
            history_filename=str(history) if history is not None else None,
            _completer=RemoteCompleter(self),
        )
        # Defaults a user's ptpython config may change (as aiopod shell does).
        repl.prompt_style = "classic"
        repl.show_status_bar = False
        repl.show_signature = False  # signatures and docstrings would need the pod's objects here
        repl.show_docstring = False
        repl.confirm_exit = False
        repl.title = f"aiopod attach {name}"
        if self.ptpython_config is not None:
            error = run_ptpython_config(repl, self.ptpython_config)
            if error is not None:
                self.show(error + "\n", error=True)
        return repl

    async def read(self) -> str:
        assert self.repl is not None
        while True:
            self._at_prompt = True
            try:
                text: str = await self.repl.app.run_async(set_exception_handler=False, handle_sigint=False)
            except KeyboardInterrupt:
                self.repl.default_buffer.document = Document()
                continue
            finally:
                self._at_prompt = False
            if text and not text.isspace():
                return text

    async def run_statement(self, text: str) -> bool:
        """Run ``text`` in the pod; False when the session is over."""
        assert self.loop is not None
        loop = self.loop
        number = next(self._ids)
        future = self._waiting[number] = loop.create_future()
        loop.add_signal_handler(signal.SIGINT, self.send, {"type": "interrupt", "id": number})
        loop.add_signal_handler(signal.SIGQUIT, self._show_stack)
        self.send({"type": "run", "id": number, "code": text})
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            await asyncio.wait({future, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            self._waiting.pop(number, None)
            loop.remove_signal_handler(signal.SIGINT)
            loop.remove_signal_handler(signal.SIGQUIT)
        if not future.done():
            return False
        done = future.result()
        if done.get("result") is not None:
            self.show_outcome(str(done["result"]), python=not done.get("plain"))
        if done.get("error"):
            text = str(done["error"])
            self.show_outcome(text.rstrip("\n"), traceback=text.startswith("Traceback"), error=True)
        if done.get("status") == "exit":
            self.left = True
            return False
        return True

    def show_outcome(self, text: str, *, python: bool = False, traceback: bool = False, error: bool = False) -> None:
        """A value (highlighted as Python unless plain) or a traceback, in the person's style."""
        repl = self.repl
        if repl is None or not repl.enable_syntax_highlighting or not (python or traceback):
            self.show(text + "\n", error=error)
            return
        lexer = PythonLexer() if python else PythonTracebackLexer()
        body: Any = PygmentsTokens(list(lexer.get_tokens(text)))
        if python:
            body = merge_formatted_text([repl.get_output_prompt(), body])
        print_formatted_text(
            body,
            style=repl._current_style,
            style_transformation=repl.style_transformation,
            include_default_pygments_style=False,
            output=repl.app.output,
        )
        repl.app.output.flush()

    def _show_stack(self) -> None:
        async def ask() -> None:
            with contextlib.suppress(SessionEnded):
                answer = await self.call({"type": "stack"})
                self.show(str(answer.get("text", "")) + "\n", error=True)

        self._stack = asyncio.ensure_future(ask())

    async def session(self) -> int:
        self.loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self.loop.add_signal_handler(sig, self._signalled, sig)
        await self.open()
        self.repl = self.make_repl()
        info = self.welcome
        self.show(
            f"attached to pod {info.get('name')} (pid {info.get('pid')}) as session #{info.get('session')}; "
            "exit() or Ctrl-D leaves, the pod runs on; h() for help\n"
        )
        with patch_stdout(raw=True):  # prints of this process (there should be none) above the prompt
            while not self.ended.is_set():
                try:
                    text = await self.read()
                except EOFError:
                    self.left = True
                    break
                except SessionEnded:
                    break
                if not await self.run_statement(text):
                    break
        self.send({"type": "bye"})
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        if self.signalled is not None:
            sys.stderr.write(f"aiopod: attach ended by {self.signalled}; the pod runs on\n")
            return 1
        if self.left:
            return 0
        sys.stderr.write(f"aiopod: {self.farewell or 'the session ended'}\n")
        return 1

    def _signalled(self, sig: signal.Signals) -> None:
        self.signalled = sig.name
        self.ended.set()
        if self.repl is not None and self._at_prompt and self.repl.app.is_running:
            self.repl.app.exit(exception=SessionEnded())
        for future in self._waiting.values():
            if not future.done():
                future.cancel()


@contextlib.contextmanager
def terminal_restored() -> Iterator[None]:
    """Whatever ends the session (exit, a signal, an error), the terminal is as it was."""
    fd = sys.stdin.fileno() if sys.stdin is not None else -1
    saved = termios.tcgetattr(fd) if fd >= 0 and os.isatty(fd) else None
    try:
        yield
    finally:
        if saved is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def attach_socket(
    path: Path, *, history: bool = True, ptpython_config: Path | Literal["default"] | None = "default"
) -> int:
    """Attach this terminal to the console of the pod serving ``path``; the exit status.

    ``ptpython_config``: ``"default"`` reads ptpython's own config file if there is one, a
    path reads that file, None reads none (as ``aiopod shell``).
    """
    if ptpython_config == "default":
        default = ptpython_config_path()
        ptpython_config = default if os.path.isfile(default) else None  # False, not an error, when unreadable
    client = AttachClient(path, history=history, ptpython_config=ptpython_config)
    with terminal_restored():
        return asyncio.run(client.session())


def pod_info(path: Path) -> dict[str, Any]:
    """The pod's ``info`` answer (for tests and tools)."""
    return request(path, protocol.hello("info"))
