"""The helpers every console gets (local or telnet): ``ps()``, ``add()``, ``await signal()``..."""

from __future__ import annotations

import asyncio
import io
import os
import pydoc
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import IO, Any, cast

from ..pod import Bean, BeanContext, HandlerResult, Pod

HELPERS = """\
pod, config, context (ctx)     the pod, its config, this console's context
ps()                           table of beans: id, label, core, state, uptime, restarts, last error
bean(x)                        the one bean with id or label x
add(core, label=None, **kw)    hot-add a bean (import string or object); returns it
cancel(x) / restart(x)         cancel / restart the beans with id or label x
reload(x)                      re-import the module of x's core, restart x on the new code
load(path)                     run a config file into the live pod: its beans start, its keys merge
await signal(name, *labels, **kw)  fire a named signal; shows which handlers ran and what they returned
await wait(x)                  wait until the beans x end
where(x)                       the current stack of the beans x
stop()                         stop the pod gracefully and leave the console (also exit() or Ctrl-D)
h()                            this overview"""

#: Helpers whose first argument is a bean id or label (for completion).
BEAN_ARGUMENT = ("bean", "cancel", "restart", "reload", "wait", "where")


class SessionExit(Exception):
    """Raised by ``exit()``, ``quit()`` and ``stop()`` to end the console session."""


class _Exit:
    """``exit()``/``quit()``: leave this console (the builtins would close the pod's stdin)."""

    def __init__(self, leave: Callable[[], None]) -> None:
        self._leave = leave

    def __call__(self, code: object = None) -> None:
        self._leave()

    def __repr__(self) -> str:
        return "Use exit() or Ctrl-D to leave the console"


class _Help:
    """``help(x)`` prints the text into the console: no pager, nothing waits on the terminal."""

    def __call__(self, request: object = None) -> None:
        if request is None:
            print("help(x) shows the documentation of x; h() lists the console helpers.")
            return
        helper = pydoc.Helper(input=io.StringIO(), output=cast(IO[str], _Stdout()))
        helper.help(request)

    def __repr__(self) -> str:
        return "Type help(object) for help about object, h() for the console helpers."


class _Stdout:
    """``sys.stdout`` as it is when written to (the console's router, per session)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def _raise_session_exit() -> None:
    raise SessionExit


class Text(str):
    """A string the console shows as it is (no quotes, no highlighting)."""

    def __repr__(self) -> str:
        return str(self)

    def __pt_repr__(self) -> str:
        return str(self)


class Pending:
    """A helper's work, already running as a task; the console awaits it for you.

    ``restart("web")`` and ``await restart("web")`` both wait at the prompt (Ctrl-C
    cancels the wait); ``t = restart("web")`` lets it go on in the background.
    """

    def __init__(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        self.what = what
        self.task = asyncio.ensure_future(coro)
        # Left to run in the background, its error shows in repr() instead of as
        # "Task exception was never retrieved" on the server's stderr.
        self.task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def __await__(self) -> Any:
        return self.task.__await__()

    def __repr__(self) -> str:
        if not self.task.done():
            return f"<{self.what}: running>"
        if self.task.cancelled():
            return f"<{self.what}: cancelled>"
        error = self.task.exception()
        return f"<{self.what}: failed: {error!r}>" if error is not None else f"<{self.what}: done>"


def format_uptime(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def table(rows: Iterable[Iterable[Any]], header: Iterable[str]) -> Text:
    """A plain text table, columns padded to their widest cell."""
    lines = [list(map(str, header))] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return Text("\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines))


def _short(value: object, width: int = 48) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def ps_table(beans: Iterable[Bean]) -> Text:
    rows = []
    for b in beans:
        error = f"{type(b.exception).__name__}: {b.exception}" if b.exception is not None else ""
        rows.append(
            [
                b.id,
                b.label or "-",
                _short(b.core, 40),
                b.state.value,
                format_uptime(b.uptime),
                b.restarts,
                _short(error),
            ]
        )
    if not rows:
        return Text("no beans (add one with add('package.module:function'))")
    return table(rows, ["id", "label", "core", "state", "uptime", "restarts", "last error"])


class SignalReport(list[HandlerResult]):
    """What ``signal()`` returns: the handler results, shown as a table."""

    def __init__(self, name: str, results: Iterable[HandlerResult]) -> None:
        super().__init__(results)
        self.name = name

    def __repr__(self) -> str:
        if not self:
            return f"signal {self.name!r}: no handler is registered for it (with those labels)"
        rows = []
        for r in self:
            who = f"#{r.bean.id} {r.bean.label or '-'}" if r.bean is not None else "pod"
            outcome = f"raised {r.error!r}" if r.error is not None else f"returned {r.value!r}"
            rows.append([who, getattr(r.handler, "__qualname__", repr(r.handler)), _short(outcome, 60)])
        return f"signal {self.name!r}: {len(self)} handlers ran\n" + table(rows, ["bean", "handler", "outcome"])

    __pt_repr__ = __repr__


def stack_text(beans: Iterable[Bean]) -> Text:
    parts = []
    for bean in beans:
        out = io.StringIO()
        if bean.task is None or bean.task.done():
            out.write(f"{bean.describe()}: {bean.state.value}, no stack\n")
        else:
            out.write(f"{bean.describe()}:\n")
            bean.task.print_stack(file=out)
        parts.append(out.getvalue().rstrip())
    return Text("\n\n".join(parts))


def build_namespace(pod: Pod, leave: Callable[[], None] = _raise_session_exit) -> dict[str, Any]:
    """The console's globals. ``leave()`` ends this console session (``stop()``, ``exit()``)."""
    context = BeanContext(pod)

    def ps() -> Text:
        """Table of beans: id, label, core, state, uptime, restarts, last error."""
        return ps_table(pod.beans)

    def bean(x: int | str) -> Bean:
        """The one bean with id or label ``x``."""
        return pod.get_bean(x)

    def add(core: Any, label: str | None = None, **kwargs: Any) -> Bean:
        """Hot-add a bean (import string or object) with keyword arguments; returns it."""
        return pod.add_bean(core, label, **kwargs)

    def cancel(x: int | str) -> list[Bean]:
        """Cancel the beans with id or label ``x``."""
        return pod.cancel(x)

    def restart(x: int | str) -> Pending:
        """Stop the beans ``x`` (bounded wait) and start them again, same id and label."""
        pod.get_beans(x)  # an unknown label fails here, at the prompt
        return Pending(pod.restart(x), f"restart({x!r})")

    def reload(x: int | str) -> Pending:
        """Re-import the module of ``x``'s core and restart ``x`` on the new code."""
        return Pending(pod.reload(x), f"reload({x!r})")

    def load(path: str) -> list[Bean]:
        """Run a config file into the live pod: its beans start, its UPPER_CASE keys merge."""
        return pod.load(path)

    def signal(name: str, *labels: str, **kwargs: Any) -> Pending:
        """Fire a named signal (at the beans with these labels); shows what each handler did."""

        async def send() -> SignalReport:
            return SignalReport(name, await pod.send_signal(name, labels or None, **kwargs))

        return Pending(send(), f"signal({name!r})")

    def wait(x: int | str) -> Pending:
        """Wait until the beans ``x`` end."""
        beans = pod.get_beans(x)

        async def until_done() -> Text:
            started = time.monotonic()
            await asyncio.gather(*(b.wait() for b in beans))
            states = ", ".join(f"{b.describe()} {b.state.value}" for b in beans)
            return Text(f"{states} (waited {time.monotonic() - started:.1f}s)")

        return Pending(until_done(), f"wait({x!r})")

    def where(x: int | str) -> Text:
        """The current stack of the beans ``x``."""
        return stack_text(pod.get_beans(x))

    def stop() -> None:
        """Stop the pod gracefully and leave the console."""
        pod.stop()
        leave()

    def h() -> Text:
        """An overview of the console helpers."""
        return Text(HELPERS)

    namespace: dict[str, Any] = {
        "__name__": "__console__",
        "__doc__": None,
        "asyncio": asyncio,
        "pod": pod,
        "config": pod.config,
        "context": context,
        "ctx": context,
        "exit": _Exit(leave),
        "quit": _Exit(leave),
        "help": _Help(),
    }
    helpers: list[Callable[..., Any]] = [ps, bean, add, cancel, restart, reload, load, signal, wait, where, stop, h]
    namespace.update((f.__name__, f) for f in helpers)
    return namespace


def remote_helpers(sessions: str) -> str:
    """``HELPERS`` for a remote session: leaving and stopping mean different things there."""
    return HELPERS.replace(
        "stop()                         stop the pod gracefully and leave the console (also exit() or Ctrl-D)",
        "stop()                         stop the POD for everyone (asks first; stop(confirm=True) does not)\n"
        "exit()                         leave this session (also Ctrl-D); the pod runs on\n"
        f"sessions()                     who is attached: {sessions}",
    )


def careful_stop(
    pod: Pod, ask: Callable[[str], Awaitable[bool]], *, name: str | None, others: Callable[[], int]
) -> Callable[..., Pending | None]:
    """A remote session's ``stop()``: it asks the person (``ask``) first, unless ``confirm=True``.

    ``others`` counts the other sessions attached (run on the pod's loop, when asking).
    """

    def stop(confirm: bool = False) -> Pending | None:
        """Stop the pod for everyone (asks first, unless ``confirm=True``), and leave."""
        if confirm:
            pod.stop()
            raise SessionExit

        async def confirmed() -> Text:
            count = others()
            question = (
                f"stop() stops the pod{f' {name}' if name else ''} (pid {os.getpid()}) and its {len(pod.beans)} beans "
                f"for everyone{f' ({count} other sessions)' if count > 0 else ''}; exit() only leaves. "
                "Stop the pod?"
            )
            if not await ask(question):
                return Text("the pod runs on (exit() leaves this session)")
            pod.stop()
            raise SessionExit

        return Pending(confirmed(), "stop()")

    return stop


def one_line(code: str, width: int = 40) -> str:
    """``code`` on one line of at most ``width`` characters (a running statement, in ``sessions()``)."""
    text = " ".join(code.split())
    return text if len(text) <= width else text[: width - 1] + "…"


async def settle(value: Any) -> Any:
    """Await a helper's ``Pending`` result (other values pass through)."""
    if isinstance(value, Pending):
        return await value
    return value


__all__ = [
    "BEAN_ARGUMENT",
    "HELPERS",
    "Pending",
    "SessionExit",
    "Text",
    "build_namespace",
    "careful_stop",
    "one_line",
    "remote_helpers",
    "settle",
]
