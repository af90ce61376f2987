"""The console's screen loops write the bytes prompt_toolkit's own write, render after render."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from contextlib import contextmanager

from prompt_toolkit.application.current import set_app
from prompt_toolkit.buffer import CompletionState
from prompt_toolkit.completion import Completion
from prompt_toolkit.data_structures import Size
from prompt_toolkit.document import Document
from prompt_toolkit.input import DummyInput
from prompt_toolkit.output.vt100 import Vt100_Output
from ptpython.repl import PythonRepl

from aiopod.console import _layout, _screen

NAMES = ["add_bean", "beans", "cancel", "config", "get_bean", "get_beans", "loop", "phase", "reload", "stop"]
NAMES += [f"name_{i:02d}" for i in range(40)]

#: What the person has typed, render after render: (text, completions shown, selected one).
STATES: list[tuple[str, list[str] | None, int | None]] = [
    ("", None, None),
    ("p", None, None),
    ("po", None, None),
    ("pod.", NAMES, None),
    ("pod.", NAMES, 0),
    ("pod.", NAMES, 1),
    ("pod.", NAMES, 17),  # the menu scrolls right
    ("pod.", NAMES, 49),
    ("pod.c", ["cancel", "config"], None),
    ("pod.cancel", None, None),
    ("pod.cancel(", None, None),
    ("def f(a, b):\n    return a + b", None, None),
    ("def f(a, b):\n    return a + b\n", None, None),
    ("x = [" + "1, " * 60 + "]", None, None),  # wraps over two rows
    ("x", None, None),  # shorter lines: the rest of each row is erased
    ("", None, None),
]


@contextmanager
def _loops(ours: bool) -> Iterator[None]:
    if ours:
        _screen.install()
    else:
        _screen.uninstall()
    try:
        yield
    finally:
        _screen.install()


def _written(ours: bool, columns: int = 100) -> list[str]:
    """What one prompt writes for each state in turn (each render diffed against the last)."""
    written = []
    with _loops(ours):
        stream = io.StringIO()
        size = Size(rows=24, columns=columns)
        output = Vt100_Output(stream, lambda: size, term="xterm")
        repl = PythonRepl(get_globals=lambda: {"pod": 1}, output=output, input=DummyInput())
        repl.show_status_bar = True
        app = repl.app
        buffer = repl.default_buffer

        async def draw() -> None:  # prompt_toolkit starts its history loading on a loop
            nonlocal size
            with set_app(app):
                for number, (text, names, index) in enumerate(STATES):
                    if number == 12:  # the terminal is resized: everything is drawn again
                        size = Size(rows=24, columns=columns - 20)
                    buffer.document = Document(text)
                    if names is not None:
                        buffer.complete_state = CompletionState(
                            buffer.document, [Completion(n, 0) for n in names], complete_index=index
                        )
                    app.renderer.render(app, app.layout)
                    written.append(stream.getvalue())
                    stream.seek(0)
                    stream.truncate()
                app.renderer.render(app, app.layout, is_done=True)
                written.append(stream.getvalue())

        asyncio.run(draw())
    return written


def test_each_render_writes_what_prompt_toolkit_writes() -> None:
    _layout.install()
    ours, theirs = _written(ours=True), _written(ours=False)
    assert len(ours) == len(STATES) + 1
    for number, (mine, original) in enumerate(zip(ours, theirs, strict=True)):
        assert mine == original, f"render {number} ({STATES[number % len(STATES)][0]!r})"
    assert "add_bean" in ours[3] and "name_" in ours[7]  # the menu was drawn and scrolled
    assert all(ours[:-1]), "every state changes the screen"
