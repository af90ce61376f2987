"""Completion for the console: bean labels, and names looked up in the live namespace.

ptpython completes with jedi on every key when completing while typing; in a process
where beans share the interpreter, jedi's work (hundreds of milliseconds of held GIL on a
first completion, several per key after) shows up as their lag. The common case — a
dotted name such as ``pod.`` or ``asyncio.sl`` — is answered here from the objects
themselves, looked up without running their code (``inspect.getattr_static``); jedi answers
a Tab this cannot answer (calls, expressions); while typing, nothing is offered there.

What the namespace answers is computed at once on the console's loop (``ConsoleCompleter``);
only jedi and path completion go to a worker thread.
"""

from __future__ import annotations

import asyncio
import builtins
import contextvars
import inspect
import keyword
import re
import sys
import types
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from ..pod import Pod
from ._switch import breathe
from .namespace import BEAN_ARGUMENT

_BEAN_ARG = re.compile(r"\b(?:%s)\(\s*(['\"])([^'\"]*)$" % "|".join(BEAN_ARGUMENT))  # noqa: UP031
_SIGNAL_LABEL = re.compile(r"\bsignal\(\s*['\"][^'\"]*['\"]\s*,(?:\s*['\"][^'\"]*['\"]\s*,)*\s*(['\"])([^'\"]*)$")
#: A dotted name at the cursor, not after something whose value only running code knows.
_DOTTED = re.compile(r"(?:^|(?<=[^\w.)\]}'\"]))((?:[A-Za-z_]\w*\.)*)([A-Za-z_]\w*)?$")
_IMPORT = re.compile(r"^\s*(?:import|from)\s")
_IMPORT_NAME = re.compile(r"^\s*(?:import|from)\s+([\w.]*)$")
_FROM_IMPORT = re.compile(r"^\s*from\s+([\w.]+)\s+import\s+(?:.*,\s*)?(\w*)$")
_PLAIN_DESCRIPTORS = (types.MemberDescriptorType, types.GetSetDescriptorType)
_MISSING = object()


class BeanLabelCompleter(Completer):
    """Completes bean labels inside ``cancel("``, ``where("``, ``signal("name", "``...

    Elsewhere it defers to ``fallback``, which would otherwise offer string completions
    of its own beside the labels.
    """

    def __init__(self, pod: Pod, fallback: Completer | None = None) -> None:
        self.pod = pod
        self.fallback = fallback

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        before = document.text_before_cursor
        match = _BEAN_ARG.search(before) or _SIGNAL_LABEL.search(before)
        if match is None:
            if self.fallback is not None:
                yield from self.fallback.get_completions(document, complete_event)
            return
        quote, prefix = match.group(1), match.group(2)
        labels = sorted({b.label for b in self.pod.beans if b.label is not None})
        for label in labels:
            if label.startswith(prefix):
                yield Completion(label + quote, start_position=-len(prefix), display=label, display_meta="bean")

    def answers_at_once(self, document: Document, complete_event: CompleteEvent) -> bool:
        """Whether the answer needs neither jedi nor the file system (see ``ConsoleCompleter``)."""
        if _BEAN_ARG.search(document.text_before_cursor) or _SIGNAL_LABEL.search(document.text_before_cursor):
            return True
        answers = getattr(self.fallback, "answers_at_once", None)
        return answers is not None and bool(answers(document, complete_event))


class NamespaceCompleter(Completer):
    """Dotted names from the live namespace; everything else goes to ``fallback`` (jedi)."""

    def __init__(self, get_namespace: Callable[[], dict[str, Any]], fallback: Completer) -> None:
        self.get_namespace = get_namespace
        self.fallback = fallback
        #: The last answer of ``answers_at_once``, used by the ``get_completions`` that follows it.
        self._last: tuple[tuple[str, bool], list[Completion] | None] | None = None

    def answers_at_once(self, document: Document, complete_event: CompleteEvent) -> bool:
        """Whether the answer needs neither jedi nor the file system (see ``ConsoleCompleter``)."""
        line = document.current_line_before_cursor
        if _in_string(line):
            return False
        completions = self._answer(line, complete_event)
        self._last = (line, complete_event.completion_requested), completions
        return completions is not None or not complete_event.completion_requested

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        line = document.current_line_before_cursor
        if _in_string(line):  # paths: ptpython's own
            yield from self.fallback.get_completions(document, complete_event)
            return
        last, self._last = self._last, None
        if last is not None and last[0] == (line, complete_event.completion_requested):
            completions = last[1]
        else:
            completions = self._answer(line, complete_event)
        if completions is not None:
            yield from completions
        elif complete_event.completion_requested:  # Tab: jedi, however long it takes
            yield from self.fallback.get_completions(document, complete_event)

    def _answer(self, line: str, complete_event: CompleteEvent) -> list[Completion] | None:
        if _IMPORT.match(line):
            return None if complete_event.completion_requested else _imported(line)
        return self.complete(line, complete_event)

    def complete(self, line: str, complete_event: CompleteEvent) -> list[Completion] | None:
        """The completions of the dotted name before the cursor, or None when jedi should answer."""
        if complete_event.completion_requested and line.count("(") > line.count(")"):
            return None  # a Tab inside a call: jedi also offers the parameters
        match = _DOTTED.search(line)
        if match is None or (not match.group(1) and not match.group(2)):
            return None
        path, prefix = match.group(1), match.group(2) or ""
        if path:
            found = self._resolve(path[:-1].split("."))
            if found is _MISSING:
                return None
            names = _names_of(found)
        else:
            found = _MISSING
            names = {*self.get_namespace(), *dir(builtins), *keyword.kwlist}
        chosen = sorted((n for n in names if n.startswith(prefix)), key=lambda n: (n.startswith("_"), n.lower()))
        return [self._completion(found, name, prefix) for name in chosen]

    def _resolve(self, parts: list[str]) -> Any:
        namespace = self.get_namespace()
        value = namespace.get(parts[0], _MISSING)
        if value is _MISSING:
            value = getattr(builtins, parts[0], _MISSING)
        for part in parts[1:]:
            if value is _MISSING:
                break
            value = _static(value, part)
        return value

    def _completion(self, owner: Any, name: str, prefix: str) -> Completion:
        if owner is _MISSING:
            value = self.get_namespace().get(name, getattr(builtins, name, _MISSING))
            meta = "keyword" if value is _MISSING and keyword.iskeyword(name) else _kind(value)
        else:
            meta = _kind(_static(owner, name))
        display = name + "()" if meta == "function" else name
        return Completion(name, -len(prefix), display=display, display_meta=meta)


class ConsoleCompleter(Completer):
    """The input buffer's completer: answers the namespace gives at once, on the console's loop.

    ptpython completes in a worker thread (``ThreadedCompleter``) that hands each
    completion back through a queue: for an answer the namespace gives in 0.1-3 ms of CPU,
    a thread hop per key, the GIL passed back and forth, and a second redraw of the prompt
    when the completions arrive after the key's own. Computed in the key's callback, they
    are drawn with it. What ``answers_at_once(document, event)`` declines (jedi, paths) is
    still computed in a worker thread, all at once, so the prompt keeps drawing meanwhile.
    """

    def __init__(self, completer: Completer, answers_at_once: Callable[[Document, CompleteEvent], bool]) -> None:
        self.completer = completer
        self.answers_at_once = answers_at_once

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        return self.completer.get_completions(document, complete_event)

    async def get_completions_async(
        self, document: Document, complete_event: CompleteEvent
    ) -> AsyncGenerator[Completion, None]:
        breathe()  # after the key's own work (see _switch.py)
        if self.answers_at_once(document, complete_event):
            completions = list(self.completer.get_completions(document, complete_event))
        else:
            context = contextvars.copy_context()  # the application, for completers that ask for it
            completions = await asyncio.get_running_loop().run_in_executor(
                None, context.run, lambda: list(self.completer.get_completions(document, complete_event))
            )
        for completion in completions:
            yield completion


def _imported(line: str) -> list[Completion]:
    """While typing an import: the modules imported already (jedi, which reads every module
    on ``sys.path`` for this, waits for a Tab)."""
    match = _IMPORT_NAME.match(line)
    if match is not None:
        name = match.group(1)
        prefix = name.rpartition(".")[2]
        depth = name.count(".")
        found = sorted(
            {m.split(".")[depth] for m in sys.modules if m.startswith(name) and m.count(".") >= depth} - {""}
        )
        return [Completion(n, -len(prefix), display_meta="module") for n in found if not n.startswith("_") or prefix]
    match = _FROM_IMPORT.match(line)
    module = sys.modules.get(match.group(1)) if match is not None else None
    if match is None or module is None:
        return []
    prefix = match.group(2)
    names = sorted(n for n in _names_of(module) if n.startswith(prefix))
    return [Completion(n, -len(prefix), display_meta=_kind(_static(module, n))) for n in names]


def _in_string(line: str) -> bool:
    """Whether the cursor is inside a string literal (a good guess for one line)."""
    quote = None
    escaped = False
    for char in line:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quote is None and char in "'\"":
            quote = char
        elif char == quote:
            quote = None
        elif quote is None and char == "#":
            return True  # a comment: nothing to complete
    return quote is not None


def _static(owner: Any, name: str) -> Any:
    """``owner.name`` without running a property or ``__getattr__``; _MISSING if that is not enough."""
    try:
        value = inspect.getattr_static(owner, name)
    except AttributeError:
        return _MISSING
    if isinstance(value, _PLAIN_DESCRIPTORS):  # slots and C attributes: reading them runs no Python code
        try:
            return getattr(owner, name)
        except AttributeError:
            return _MISSING
    if isinstance(value, staticmethod | classmethod):
        return value.__func__
    if isinstance(value, property) or (hasattr(type(value), "__get__") and not callable(value)):
        return _MISSING  # its value is what its code returns
    return value


def _names_of(value: Any) -> set[str]:
    try:
        return set(dir(value))
    except Exception:  # a broken __dir__ in somebody's class: offer nothing rather than fail
        return set()


def _kind(value: Any) -> str:
    if value is _MISSING:
        return "attribute"
    if isinstance(value, types.ModuleType):
        return "module"
    if isinstance(value, type):
        return "class"
    if callable(value):
        return "function"
    return "instance"


__all__ = ["BeanLabelCompleter", "ConsoleCompleter", "NamespaceCompleter"]
