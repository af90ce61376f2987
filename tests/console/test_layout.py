"""The console's faster split division gives prompt_toolkit's own sizes."""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import Callable
from typing import Any

from prompt_toolkit.application.current import set_app
from prompt_toolkit.buffer import CompletionState
from prompt_toolkit.completion import Completion
from prompt_toolkit.data_structures import Size
from prompt_toolkit.document import Document
from prompt_toolkit.input import DummyInput
from prompt_toolkit.layout import containers
from prompt_toolkit.layout.containers import HSplit, VSplit, Window
from prompt_toolkit.layout.dimension import Dimension
from prompt_toolkit.layout.processors import Processor, Transformation, TransformationInput
from prompt_toolkit.layout.screen import WritePosition
from prompt_toolkit.output.vt100 import Vt100_Output
from prompt_toolkit.renderer import Renderer
from ptpython.repl import PythonRepl

from aiopod.console import _layout


def _random_dimension(rng: random.Random) -> Dimension:
    # Weight 0 is left out: a split that must grow a weight-0 child loops for ever in
    # prompt_toolkit's own division (it never gets a turn), and so in this one.
    low = rng.randint(0, 5)
    high = low + rng.randint(0, 60)
    return Dimension(min=low, max=high, preferred=rng.randint(low, high), weight=rng.choice([1, 1, 1, 2, 3, 5]))


def test_the_sizes_are_prompt_toolkits_own() -> None:
    rng = random.Random(11)
    checked = 0
    for _ in range(500):
        dimensions = [_random_dimension(rng) for _ in range(rng.randint(1, 6))]
        size = rng.randint(0, 120)
        vsplit = VSplit([Window(width=d) for d in dimensions])
        hsplit = HSplit([Window(height=d) for d in dimensions])
        position = WritePosition(xpos=0, ypos=0, width=80, height=size)
        expected = (_layout._ORIGINAL["widths"](vsplit, size), _layout._ORIGINAL["heights"](hsplit, position))
        assert (_layout._divide_widths(vsplit, size), _layout._divide_heights(hsplit, position)) == expected
        checked += 1
    assert checked == 500


def test_install_replaces_the_division() -> None:
    _layout.install()
    assert containers.VSplit._divide_widths is _layout._divide_widths
    assert containers.HSplit._divide_heights is _layout._divide_heights


def _screens(render: Callable[..., None], texts: list[str]) -> list[str]:
    """What ptpython's layout writes for each text (a fresh terminal each time), rendered by ``render``."""
    screens = []
    for text in texts:
        stream = io.StringIO()
        output = Vt100_Output(stream, lambda: Size(rows=24, columns=100), term="xterm")
        repl = PythonRepl(get_globals=lambda: {"pod": 1, "asyncio": asyncio}, output=output, input=DummyInput())
        repl.show_status_bar = True
        repl.show_line_numbers = "\n" in text
        app = repl.app
        buffer = repl.default_buffer
        buffer.document = Document(text)
        if text.endswith("."):  # the completion menu open
            buffer.complete_state = CompletionState(
                buffer.document, [Completion(name, 0) for name in ("sleep", "gather", "wait_for", "run")]
            )

        async def draw(app: Any = app) -> None:  # prompt_toolkit starts its history loading on a loop
            with set_app(app):
                render(app.renderer, app, app.layout)

        asyncio.run(draw())
        screens.append(stream.getvalue())
    return screens


def test_a_render_measuring_each_container_once_writes_what_prompt_toolkit_writes() -> None:
    _layout.install()
    texts = ["", "x = 1", "asyncio.", "def f(a, b):\n    return a + b", "pod." + "y" * 150]
    original = _screens(_layout._RENDER, texts)
    assert _screens(Renderer.render, texts) == original
    assert all(">>>" in screen or "In [" in screen for screen in original)


class _CountingProcessor(Processor):
    """Counts the lines it is given: each is one making of the buffer's content."""

    def __init__(self) -> None:
        self.lines = 0

    def apply_transformation(self, transformation_input: TransformationInput) -> Transformation:
        self.lines += 1
        return Transformation(transformation_input.fragments)


def _lines_processed(render: Callable[..., None]) -> int:
    counting = _CountingProcessor()
    output = Vt100_Output(io.StringIO(), lambda: Size(rows=24, columns=100), term="xterm")
    repl = PythonRepl(get_globals=lambda: {}, output=output, input=DummyInput(), _extra_buffer_processors=[counting])
    repl.default_buffer.document = Document("x = 1")

    async def draw() -> None:
        with set_app(repl.app):
            render(repl.app.renderer, repl.app, repl.app.layout)

    asyncio.run(draw())
    return counting.lines


def test_a_render_makes_the_inputs_content_once_per_size() -> None:
    _layout.install()
    # prompt_toolkit makes it for every measure of the input's window (each split above it
    # measures it again) and to draw it; now once to measure it and once to draw it.
    assert (_lines_processed(_layout._RENDER), _lines_processed(Renderer.render)) == (6, 2)
