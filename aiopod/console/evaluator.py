"""Statements from any thread, run as tasks on the pod's loop: the half of a console the pod hosts.

A console is a front end (prompt, keys, drawing, completion; or a socket to a client that
does all that) plus this evaluator. The front end lives in its own thread; only the
statements come to the pod's loop, so typing never stalls a bean::

    evaluator = Evaluator.for_pod(pod)           # once, on the pod's loop
    session = evaluator.session(namespace, stdout=write)   # write(text) gets the output
    future = session.submit("await asyncio.sleep(1); 6 * 7")   # from any thread
    outcome = future.result()                    # Outcome(status="ok", text="42")
    session.interrupt()                          # from any thread: Ctrl-C for this session
    session.close()

- ``submit(source)`` compiles in the calling thread (a ``SyntaxError`` resolves the future
  at once) and runs the code as one task on the pod's loop, with top-level ``await``. A
  final expression's value is stored as ``_`` in the namespace and its ``repr()`` (made on
  the loop, like everything that touches the pod's objects) is ``Outcome.text``; a helper's
  ``Pending`` is awaited first; a ``__pt_repr__`` that returns a string is ``Outcome.text``
  with ``plain=True`` (show it as it is). The future resolves on the pod's loop thread.
- ``Outcome.status``: ``"ok"``; ``"error"`` (``text`` is the traceback, without the
  evaluator's own frames, or one line for an ``AiopodError``); ``"interrupted"``; or
  ``"exit"`` (``SystemExit``, ``exit()``, or ``SessionExit`` raised by the namespace's
  ``stop()``): the front end should end its session.
- Output: while the statement runs, ``print``, ``sys.stdout``/``sys.stderr`` writes,
  ``pprint``, ``help`` and tracebacks printed by the statement — and by every task it starts,
  which inherits the context variable that names the session — go to the session's
  ``stdout``/``stderr`` callables. They are called in the writing thread (the pod's loop,
  mostly) and must not block. Everything else goes where ``sys.stdout``/``sys.stderr``
  went before (the pod's own output), or to ``Evaluator.fallback_stdout/stderr``.
- ``interrupt()``: a statement that awaits is cancelled. One that blocks the loop
  (``while True: pass``) gets ``KeyboardInterrupt`` raised inside it, by the main thread's
  SIGINT handler, which Python runs between bytecodes even while the loop is stuck.
  ``Evaluator.foreground`` is the session a terminal Ctrl-C is for (the local console).

Signal ownership: the pod's runner is the one owner of SIGINT/SIGTERM. It installs them
with ``signal.signal`` — not ``loop.add_signal_handler``, whose callbacks wait for the
loop and whose wakeup fd the runner does not need — and asks ``pod.interrupt_handlers``
first. The evaluator is one of those: a SIGINT that is for a statement is taken (the pod
does not stop); any other keeps its meaning for the pod. ``interrupt()`` from another
thread "kicks" the main thread with ``signal.pthread_kill(SIGINT)`` (which also breaks a
blocking ``time.sleep``) after noting why, so the handler knows that SIGINT is not a stop.
No front end may install SIGINT handlers of its own (prompt_toolkit runs with
``handle_sigint=False``; ptpython's ``run_async``, which swaps them around each statement,
is not used).

This module imports neither prompt_toolkit nor ptpython: a headless pod serves remote
sessions with it.
"""

from __future__ import annotations

import ast
import asyncio
import collections
import concurrent.futures
import contextvars
import dataclasses
import itertools
import linecache
import signal
import sys
import threading
import time
import traceback
import types
import weakref
from ast import PyCF_ALLOW_TOP_LEVEL_AWAIT
from collections.abc import Callable
from inspect import CO_COROUTINE
from typing import IO, Any, ClassVar, Literal, cast

from ..pod import AiopodError, Pod, PodStateError
from .namespace import SessionExit, settle

Status = Literal["ok", "error", "interrupted", "exit"]
Write = Callable[[str], object]

#: How long a kick (an ``interrupt()`` sent as SIGINT) may take to reach the handler. A kick
#: that Python merged with another would otherwise swallow the next real Ctrl-C.
KICK_TTL = 1.0
#: Source kept for tracebacks (linecache), most recent statements first out.
KEEP_SOURCES = 200
INTERRUPTED = "KeyboardInterrupt (the statement was cancelled; the pod runs on)"

_session: contextvars.ContextVar[Session | None] = contextvars.ContextVar("aiopod_console_session", default=None)


class SessionBusy(AiopodError, RuntimeError):
    """A session runs one statement at a time; wait for the outcome or interrupt it."""


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """How a statement ended; ``text`` is the value's repr, the traceback, or None.

    ``plain``: the text is meant to be shown as it is (a table, a report: the value had a
    ``__pt_repr__`` that returned a string), not highlighted as Python.
    """

    status: Status
    text: str | None = None
    plain: bool = False


def current_session() -> Session | None:
    """The session whose statement (or a task it started) is running, if any."""
    return _session.get()


class _Router:
    """``sys.stdout``/``sys.stderr``: to the current session's sink, else to the pod's stream."""

    def __init__(self, evaluator: Evaluator, stream: Literal["stdout", "stderr"], fallback: IO[str]) -> None:
        self._evaluator = evaluator
        self._stream = stream
        self.fallback = fallback

    def write(self, text: str) -> int:
        session = _session.get()
        if session is not None and not session.closed:
            session.write(self._stream, text)
        else:
            self.fallback.write(text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _session.get() is None:
            self.fallback.flush()

    def isatty(self) -> bool:
        return False if _session.get() is not None else self.fallback.isatty()

    def __getattr__(self, name: str) -> Any:  # encoding, errors, fileno, buffer...
        return getattr(self.fallback, name)


class Statement:
    """One submitted statement: its code, its task, its outcome."""

    def __init__(self, session: Session, body: types.CodeType | None, last: types.CodeType | None) -> None:
        self.session = session
        self.body = body
        self.last = last
        self.future: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
        self.task: asyncio.Task[Outcome] | None = None
        self.coro: Any = None
        #: The SIGINT handler's frame, when it raised KeyboardInterrupt in this statement.
        self.handler_frame: types.FrameType | None = None

    def executing(self, frame: types.FrameType | None) -> bool:
        """Whether this statement's own code is on the stack that ``frame`` ends."""
        mine = self.coro.cr_frame if self.coro is not None else None
        while frame is not None and mine is not None:
            if frame is mine:
                return True
            frame = frame.f_back
        return False

    async def execute(self) -> Outcome:
        """Run the code (the frame ``executing`` looks for); a blocking KeyboardInterrupt lands here."""
        namespace = self.session.namespace
        try:
            if self.body is not None:
                result = eval(self.body, namespace)
                if self.body.co_flags & CO_COROUTINE:
                    await result
            if self.last is None:
                return Outcome("ok")
            value = eval(self.last, namespace)
            if self.last.co_flags & CO_COROUTINE:
                value = await value
            value = await settle(value)
            if value is None:
                return Outcome("ok")
            namespace["_"] = value
            shown = getattr(type(value), "__pt_repr__", None)
            if shown is not None:
                text = shown(value)
                if isinstance(text, str):
                    return Outcome("ok", text, plain=True)
            return Outcome("ok", repr(value))
        except (SystemExit, SessionExit):
            return Outcome("exit")
        except KeyboardInterrupt as exc:
            return Outcome("interrupted", _format(exc, self.handler_frame))
        except Exception as exc:
            sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, exc.__traceback__
            return Outcome("error", _format(exc))


class Session:
    """One console's statements, namespace and output; see the module docstring."""

    def __init__(self, evaluator: Evaluator, namespace: dict[str, Any], stdout: Write, stderr: Write | None) -> None:
        self.evaluator = evaluator
        self.namespace = namespace
        self.stdout = stdout
        self.stderr = stderr if stderr is not None else stdout
        self.closed = False
        self.statement: Statement | None = None
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        """Whether a statement is running."""
        return self.statement is not None

    def write(self, stream: Literal["stdout", "stderr"], text: str) -> None:
        (self.stdout if stream == "stdout" else self.stderr)(text)

    def submit(self, source: str) -> concurrent.futures.Future[Outcome]:
        """Run ``source`` on the pod's loop (call from any thread); resolves to an ``Outcome``."""
        if self.closed:
            raise PodStateError("this console session is closed")
        try:
            body, last = self.evaluator.compile(source)
        except (SyntaxError, ValueError, OverflowError) as exc:  # what compile() raises for bad source
            done: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
            done.set_result(Outcome("error", "".join(traceback.format_exception_only(exc)).rstrip("\n")))
            return done
        statement = Statement(self, body, last)
        with self._lock:
            if self.statement is not None:
                raise SessionBusy("this session already runs a statement; interrupt it or wait for its outcome")
            self.statement = statement
        try:
            self.evaluator.loop.call_soon_threadsafe(self._start, statement)
        except RuntimeError:  # the loop is closed: the pod has stopped
            self.statement = None
            raise PodStateError("the pod has stopped; it runs no more statements") from None
        return statement.future

    def run(self, source: str, timeout: float | None = None) -> Outcome:
        """``submit(source).result(timeout)``; never call it on the pod's loop."""
        return self.submit(source).result(timeout)

    def _start(self, statement: Statement) -> None:
        context = contextvars.copy_context()
        context.run(_session.set, self)
        statement.coro = statement.execute()
        statement.task = self.evaluator.loop.create_task(statement.coro, name="console statement", context=context)
        statement.task.add_done_callback(lambda task: self._finish(statement, task))

    def _finish(self, statement: Statement, task: asyncio.Task[Outcome]) -> None:
        with self._lock:
            if self.statement is statement:
                self.statement = None
        if task.cancelled():
            outcome = Outcome("interrupted", INTERRUPTED)
        elif task.exception() is not None:  # BaseException that execute() does not turn into an outcome
            outcome = Outcome("error", _format(task.exception()))  # type: ignore[arg-type]
        else:
            outcome = task.result()
        statement.future.set_result(outcome)

    def interrupt(self) -> bool:
        """Interrupt the running statement (from any thread); False when none runs."""
        statement = self.statement
        if statement is None:
            return False
        if threading.current_thread() is threading.main_thread():
            self.evaluator.interrupt_now(statement, sys._getframe())
        else:
            self.evaluator.kick(statement)
        return True

    def close(self) -> None:
        """End the session: its running statement is cancelled, its output goes nowhere."""
        self.closed = True
        statement = self.statement
        if statement is not None and statement.task is not None:
            self.evaluator.loop.call_soon_threadsafe(statement.task.cancel)
        self.evaluator.sessions.discard(self)
        if self.evaluator.foreground is self:
            self.evaluator.foreground = None


class Evaluator:
    """The pod's statement runner: sessions, output routing, and its part in SIGINT."""

    _by_pod: ClassVar[weakref.WeakKeyDictionary[Pod, Evaluator]] = weakref.WeakKeyDictionary()

    def __init__(self, pod: Pod, loop: asyncio.AbstractEventLoop) -> None:
        self.pod = pod
        self.loop = loop
        self.sessions: weakref.WeakSet[Session] = weakref.WeakSet()
        #: The session a terminal's Ctrl-C (a SIGINT nobody kicked) interrupts.
        self.foreground: Session | None = None
        self._kicks: collections.deque[tuple[float, Statement]] = collections.deque()
        self._counter = itertools.count(1)
        self._sources: collections.deque[str] = collections.deque()
        self._stdout = _Router(self, "stdout", sys.stdout)
        self._stderr = _Router(self, "stderr", sys.stderr)
        sys.stdout, sys.stderr = self._stdout, self._stderr
        pod.interrupt_handlers.append(self.on_sigint)

    @classmethod
    def for_pod(cls, pod: Pod) -> Evaluator:
        """The pod's one evaluator (made at the first call, which must be on the pod's loop)."""
        evaluator = cls._by_pod.get(pod)
        if evaluator is None:
            evaluator = cls._by_pod[pod] = cls(pod, asyncio.get_running_loop())
        return evaluator

    def session(self, namespace: dict[str, Any], stdout: Write, stderr: Write | None = None) -> Session:
        """A new session over ``namespace``; its output goes to ``stdout`` (and ``stderr``)."""
        session = Session(self, namespace, stdout, stderr)
        self.sessions.add(session)
        return session

    @property
    def fallback_stdout(self) -> IO[str]:
        """Where output that belongs to no session goes."""
        return self._stdout.fallback

    @fallback_stdout.setter
    def fallback_stdout(self, stream: IO[str]) -> None:
        self._stdout.fallback = stream

    @property
    def fallback_stderr(self) -> IO[str]:
        return self._stderr.fallback

    @fallback_stderr.setter
    def fallback_stderr(self, stream: IO[str]) -> None:
        self._stderr.fallback = stream

    def close(self) -> None:
        """Give ``sys.stdout``/``sys.stderr`` and SIGINT back; end every session."""
        for session in list(self.sessions):
            session.close()
        if sys.stdout is self._stdout:
            sys.stdout = self._stdout.fallback
        if sys.stderr is self._stderr:
            sys.stderr = self._stderr.fallback
        if self.on_sigint in self.pod.interrupt_handlers:
            self.pod.interrupt_handlers.remove(self.on_sigint)
        self._by_pod.pop(self.pod, None)

    def compile(self, source: str) -> tuple[types.CodeType | None, types.CodeType | None]:
        """The statements before a final expression, and that expression (to show its value)."""
        name = f"<console#{next(self._counter)}>"
        tree = ast.parse(source, name, "exec")
        last: ast.Expression | None = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(cast(ast.Expr, tree.body.pop()).value)
        flags = PyCF_ALLOW_TOP_LEVEL_AWAIT
        body = compile(tree, name, "exec", flags=flags, dont_inherit=True) if tree.body else None
        expression = compile(last, name, "eval", flags=flags, dont_inherit=True) if last is not None else None
        lines = source.splitlines(keepends=True)
        linecache.cache[name] = (len(source), None, lines, name)
        self._sources.append(name)
        while len(self._sources) > KEEP_SOURCES:
            linecache.cache.pop(self._sources.popleft(), None)
        return body, expression

    # -- interrupts ---------------------------------------------------------------------

    def kick(self, statement: Statement) -> None:
        """From another thread: have the main thread interrupt ``statement``."""
        self._kicks.append((time.monotonic(), statement))
        try:
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        except (OSError, ValueError):  # the main thread is gone: the process is ending
            self._kicks.pop()

    def on_sigint(self) -> bool:
        """Part of the main thread's SIGINT handler: True when the signal was for a statement."""
        frame = sys._getframe(1)
        expired = time.monotonic() - KICK_TTL
        while self._kicks and self._kicks[0][0] < expired:
            self._kicks.popleft()
        if self._kicks:
            _, statement = self._kicks.popleft()
            if statement.session.statement is statement:
                self.interrupt_now(statement, frame)
            return True  # a kick, even for a statement that has ended since: never a stop
        foreground = self.foreground
        running = foreground.statement if foreground is not None else None
        if running is None:
            return False
        self.interrupt_now(running, frame)
        return True

    def interrupt_now(self, statement: Statement, frame: types.FrameType | None) -> None:
        """In the main thread: raise KeyboardInterrupt in the statement if it holds the loop, else cancel it."""
        if statement.executing(frame):
            statement.handler_frame = _handler_frame()
            raise KeyboardInterrupt
        if statement.task is not None:
            self.loop.call_soon_threadsafe(statement.task.cancel)
        else:  # not started yet: cancel it as soon as it is
            self.loop.call_soon_threadsafe(lambda: statement.task.cancel() if statement.task else None)


def _handler_frame() -> types.FrameType | None:
    """The frame of the SIGINT handler that is running (the frame below it was interrupted)."""
    handler = signal.getsignal(signal.SIGINT)
    code = getattr(getattr(handler, "__func__", handler), "__code__", None)
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code is not code:
        frame = frame.f_back
    return frame


def _format(exc: BaseException, handler_frame: types.FrameType | None = None) -> str:
    """The traceback of a statement's exception, from the statement's own frames on.

    For a KeyboardInterrupt the SIGINT handler raised, the frames of the handler are left
    out: the traceback ends where the statement was interrupted.
    """
    if isinstance(exc, AiopodError):  # a mistake at the prompt: the message says it all
        return f"{type(exc).__name__}: {exc}"
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    if handler_frame is None or not isinstance(exc, KeyboardInterrupt):
        return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip("\n")
    kept = []
    while tb is not None and tb.tb_frame is not handler_frame:
        kept.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    head = ["Traceback (most recent call last):\n", *traceback.StackSummary.extract(kept).format()] if kept else []
    return "".join([*head, *traceback.format_exception_only(type(exc), exc)]).rstrip("\n")


__all__ = [
    "INTERRUPTED",
    "Evaluator",
    "Outcome",
    "Session",
    "SessionBusy",
    "SessionExit",
    "Statement",
    "current_session",
]
