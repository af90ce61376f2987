"""The console's own completer: live names without running their code, jedi only on Tab."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from aiopod.console.completion import ConsoleCompleter, NamespaceCompleter
from aiopod.pod import Pod


class Recorder(Completer):
    """Stands for jedi: records that it was asked, offers one marker completion."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        self.asked.append(document.text)
        yield Completion("from_jedi")


class Lazy:
    """An object whose property would run code if completion read it."""

    runs = 0

    @property
    def expensive(self) -> Any:
        Lazy.runs += 1
        return self

    def method(self) -> None:
        """A plain method."""


def _complete(text: str, namespace: dict[str, Any], tab: bool = False) -> tuple[list[str], list[str]]:
    jedi = Recorder()
    completer = NamespaceCompleter(lambda: namespace, jedi)
    event = CompleteEvent(completion_requested=tab)
    return [c.text for c in completer.get_completions(Document(text), event)], jedi.asked


def test_dotted_names_come_from_the_live_objects_without_jedi() -> None:
    names, asked = _complete("pod.add", {"pod": Pod()})
    assert names == ["add_bean", "add_signal_handler", "add_spec"] and asked == []
    names, asked = _complete("asyncio.sl", {"asyncio": asyncio})
    assert names == ["sleep"] and asked == []
    names, _ = _complete("x = len(pod.conf", {"pod": Pod()})
    assert names == ["config"]


def test_reading_attributes_runs_no_property() -> None:
    names, asked = _complete("lazy.", {"lazy": Lazy()})
    assert {"expensive", "method"} <= set(names) and asked == []
    names, asked = _complete("lazy.expensive.me", {"lazy": Lazy()})
    assert names == [] and asked == []  # a property's value is unknown: nothing while typing
    assert Lazy.runs == 0
    names, asked = _complete("lazy.expensive.me", {"lazy": Lazy()}, tab=True)
    assert names == ["from_jedi"] and asked == ["lazy.expensive.me"]  # Tab asks jedi


def test_jedi_answers_tabs_inside_calls_and_strings() -> None:
    assert _complete("print(pod.be", {"pod": Pod()}, tab=True)[0] == ["from_jedi"]
    assert "beans" in _complete("print(pod.be", {"pod": Pod()})[0]  # while typing: no jedi
    assert _complete("open('/tm", {})[1] == ["open('/tm"]  # paths are ptpython's own


def test_imports_while_typing_offer_loaded_modules_only() -> None:
    names, asked = _complete("import asyncio.ev", {})
    assert names == ["events"] and asked == []
    names, asked = _complete("from asyncio import sl", {})
    assert names == ["sleep"] and asked == []
    assert _complete("import asy", {}, tab=True)[1] == ["import asy"]


class ThreadRecorder(Recorder):
    """Stands for jedi, and records the thread it was asked in."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        self.threads.append(threading.get_ident())
        yield from super().get_completions(document, complete_event)


def _complete_async(text: str, tab: bool) -> tuple[list[str], ThreadRecorder, int]:
    jedi = ThreadRecorder()
    namespace = NamespaceCompleter(lambda: {"pod": Pod(), "asyncio": asyncio}, jedi)
    completer = ConsoleCompleter(namespace, namespace.answers_at_once)
    event = CompleteEvent(completion_requested=tab, text_inserted=not tab)

    async def complete() -> tuple[list[str], int]:
        asked_in: list[int] = []
        original = namespace.complete

        def complete(line: str, complete_event: CompleteEvent) -> list[Completion] | None:
            asked_in.append(threading.get_ident())
            return original(line, complete_event)

        namespace.complete = complete  # type: ignore[method-assign]
        names = [c.text async for c in completer.get_completions_async(Document(text), event)]
        assert len(set(asked_in)) <= 1  # computed once, or in one thread
        return names, asked_in[0] if asked_in else 0

    names, thread = asyncio.run(asyncio.wait_for(complete(), 10))
    return names, jedi, thread


def test_the_namespaces_answers_are_computed_in_the_consoles_thread() -> None:
    names, jedi, thread = _complete_async("asyncio.sl", tab=False)
    assert names == ["sleep"] and jedi.asked == []
    assert thread == threading.get_ident()


def test_jedi_answers_in_a_worker_thread() -> None:
    names, jedi, _ = _complete_async("print(pod.add", tab=True)  # a Tab inside a call: jedi's
    assert names == ["from_jedi"] and jedi.asked == ["print(pod.add"]
    assert jedi.threads and jedi.threads[0] != threading.get_ident()


def test_paths_in_strings_are_completed_in_a_worker_thread() -> None:
    names, jedi, _ = _complete_async("open('ab", tab=False)
    assert names == ["from_jedi"] and jedi.threads[0] != threading.get_ident()
