"""A faster ``HSplit``/``VSplit`` size division for prompt_toolkit, with the same results.

prompt_toolkit divides a split's rows or columns one cell at a time, asking a generator
for the next child and summing every child's size again at each step. ptpython's layout
asks this of many splits, several times per redraw, over the terminal's whole width:
profiled while typing, it was 60% of a redraw (5.8 ms of CPU each; 3.8 ms with this),
and the console thread's CPU is what the beans feel, through the GIL. The division
below walks the same weighted order (cached per set of weights: it repeats with a period
of the weights' sum) and keeps a running total; ``tests/console/test_layout.py`` checks
it against prompt_toolkit's own on random dimensions.

Each container is also measured once per render (``_memoized``): a split measures its
children for its own size and again to divide its space, at every level of the layout.
Measured on ptpython's layout (offline, CPU time, least of 40 batches of the typing
benchmark's lines): 2.2-2.3 ms a redraw before, 1.8-1.9 ms after; the same test renders
that layout both ways and compares the bytes written. The input's content (its lines
lexed and through every processor) is likewise made once per render and size: 8.47 ->
8.23 M instructions a render of the typing benchmark's lines (callgrind, 310 renders).
``install()`` is idempotent.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable
from typing import Any

from prompt_toolkit.application.current import get_app
from prompt_toolkit.layout import containers, controls
from prompt_toolkit.layout.controls import UIContent
from prompt_toolkit.layout.dimension import Dimension, sum_layout_dimensions
from prompt_toolkit.renderer import Renderer
from prompt_toolkit.utils import take_using_weights

from ._switch import breathe

_ORIGINAL: dict[str, Callable[..., list[int] | None]] = {
    "heights": containers.HSplit._divide_heights,
    "widths": containers.VSplit._divide_widths,
}


@functools.lru_cache(maxsize=1024)
def _turns(weights: tuple[int, ...]) -> tuple[int, ...] | None:
    """One period of ``take_using_weights`` for these weights (None: not periodic as expected)."""
    if not all(isinstance(w, int) for w in weights):
        return None
    period = sum(w for w in weights if w > 0)
    if period == 0:
        return None
    order = list(itertools.islice(take_using_weights(list(range(len(weights))), list(weights)), 2 * period))
    if order[:period] != order[period:]:
        return None
    return tuple(order[:period])


def _grow(sizes: list[int], caps: list[int], stop: int, turns: tuple[int, ...], position: int) -> int:
    """Add a cell to the child whose turn it is (if below its cap) until ``stop``; the next turn.

    Whole periods of turns are added at once while no child can reach its cap or ``stop``
    within them (each child then gets its weight's count of cells, and the period ends
    where it began); the last period and those around a cap go a cell at a time.
    """
    total = sum(sizes)
    count = len(turns)
    while total < stop:
        counts: dict[int, int] = {}
        for child in turns:
            if sizes[child] < caps[child]:
                counts[child] = counts.get(child, 0) + 1
        if not counts:
            break  # only weight-0 children can grow, which never get a turn (prompt_toolkit loops for ever)
        per_period = sum(counts.values())
        periods = min((stop - total) // per_period, *((caps[c] - sizes[c]) // n for c, n in counts.items())) - 1
        if periods > 0:
            for child, n in counts.items():
                sizes[child] += n * periods
            total += per_period * periods
        for _ in range(count):  # one period a cell at a time: a cap or ``stop`` may come in it
            if total >= stop:
                break
            child = turns[position]
            if sizes[child] < caps[child]:
                sizes[child] += 1
                total += 1
            position += 1
            if position == count:
                position = 0
    return position


def divide(dimensions: list[Dimension], size: int, grow_to_max: bool) -> list[int] | None:
    """Sizes for ``dimensions`` in ``size`` cells, as prompt_toolkit's ``_divide_*`` computes them."""
    total = sum_layout_dimensions(dimensions)
    if total.min > size:
        return None
    sizes = [d.min for d in dimensions]
    turns = _turns(tuple(d.weight for d in dimensions))
    if turns is None:
        raise _Unusual
    position = _grow(sizes, [d.preferred for d in dimensions], min(size, total.preferred), turns, 0)
    if grow_to_max:
        _grow(sizes, [d.max for d in dimensions], min(size, total.max), turns, position)
    return sizes


class _Unusual(Exception):
    """Weights this division does not handle: prompt_toolkit's own runs."""


def _divide_heights(self: containers.HSplit, write_position: Any) -> list[int] | None:
    if not self.children:
        return []
    width, height = write_position.width, write_position.height
    dimensions = [c.preferred_height(width, height) for c in self._all_children]
    try:
        return divide(dimensions, height, not get_app().is_done)
    except _Unusual:
        return _ORIGINAL["heights"](self, write_position)


def _divide_widths(self: containers.VSplit, width: int) -> list[int] | None:
    children = self._all_children
    if not children:
        return []
    dimensions = [c.preferred_width(width) for c in children]
    try:
        return divide(dimensions, width, True)
    except _Unusual:
        return _ORIGINAL["widths"](self, width)


class _Pass(threading.local):
    """What was asked of each container (its sizes) and buffer control (its content) during
    the render running in this thread."""

    sizes: dict[tuple[int, str, tuple[object, ...]], tuple[object, Any]] | None = None


_PASS = _Pass()
#: The containers whose preferred sizes are kept for the rest of a render.
_MEMOIZED = (containers.Window, containers.HSplit, containers.VSplit, containers.FloatContainer)
_RENDER = Renderer.render


def _memoized(kind: str, original: Callable[..., Dimension]) -> Callable[..., Dimension]:
    """``original`` (a ``preferred_width``/``_height``), computed once per container, arguments and render.

    A split asks each child its size for its own size, then again to divide its space,
    and its parent does the same: a window deep in ptpython's layout is measured (its
    text processed) once per level above it. Nothing a size depends on changes during a
    render. The container is kept with its size, so its id cannot be reused meanwhile.
    """

    def preferred(self: containers.Container, *args: int, **kwargs: int) -> Dimension:
        sizes = _PASS.sizes
        if sizes is None or kwargs:  # not rendering (the state may have changed since), or asked by name
            return original(self, *args, **kwargs)
        key = (id(self), kind, args)
        found = sizes.get(key)
        if found is None:
            breathe()  # between the steps of a render (see _switch.py)
            found = sizes[key] = (self, original(self, *args))
        return found[1]

    preferred.__wrapped__ = original  # type: ignore[attr-defined]
    return preferred


_CREATE_CONTENT = controls.BufferControl.create_content


def _buffer_content(self: controls.BufferControl, width: int, height: int, preview_search: bool = False) -> UIContent:
    """The input's lines, lexed and passed through every processor, made once per render and size.

    A buffer's window is measured twice a render (for its split's size, then to divide
    it), at the same width: each measure made the content again, every line through
    ptpython's processors (brackets, selection, search, tabs...), one of three makings a
    render. prompt_toolkit keeps a window's content for the rest of a render the same way
    (``Window._get_ui_content``, keyed by ``render_counter``).
    """
    sizes = _PASS.sizes
    if sizes is None:
        return _CREATE_CONTENT(self, width, height, preview_search)
    key = (id(self), "content", (width, height, preview_search))
    found = sizes.get(key)
    if found is None:
        breathe()
        found = sizes[key] = (self, _CREATE_CONTENT(self, width, height, preview_search))
    content: UIContent = found[1]
    return content


def _render(self: Renderer, *args: Any, **kwargs: Any) -> None:
    breathe()
    outer, _PASS.sizes = _PASS.sizes, {}
    try:
        _RENDER(self, *args, **kwargs)
    finally:
        _PASS.sizes = outer


def install() -> None:
    """Use the faster division in every HSplit and VSplit of this process, measure each
    container once per render, and make each buffer's content once per render and size."""
    containers.HSplit._divide_heights = _divide_heights  # type: ignore[method-assign]
    containers.VSplit._divide_widths = _divide_widths  # type: ignore[method-assign]
    if Renderer.render is _render:
        return
    for cls in _MEMOIZED:
        cls.preferred_width = _memoized("width", cls.preferred_width)  # type: ignore[method-assign]
        cls.preferred_height = _memoized("height", cls.preferred_height)  # type: ignore[method-assign]
    controls.BufferControl.create_content = _buffer_content  # type: ignore[method-assign]
    Renderer.render = _render  # type: ignore[method-assign]


__all__ = ["divide", "install"]
