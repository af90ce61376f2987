"""A faster ``HSplit``/``VSplit`` size division for prompt_toolkit, with the same results.

prompt_toolkit divides a split's rows or columns one cell at a time, asking a generator
for the next child and summing every child's size again at each step. ptpython's layout
asks this of many splits, several times per redraw, over the terminal's whole width:
profiled while typing, it was 60% of a redraw (5.8 ms of CPU each; 3.8 ms with this),
and the console thread's CPU is what the beans feel, through the GIL. The division
below walks the same weighted order (cached per set of weights: it repeats with a period
of the weights' sum) and keeps a running total; ``tests/console/test_layout.py`` checks
it against prompt_toolkit's own on random dimensions. ``install()`` is idempotent.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

from prompt_toolkit.application.current import get_app
from prompt_toolkit.layout import containers
from prompt_toolkit.layout.dimension import Dimension, sum_layout_dimensions
from prompt_toolkit.utils import take_using_weights

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
    """Add a cell to the child whose turn it is (if below its cap) until ``stop``; the next turn."""
    total = sum(sizes)
    count = len(turns)
    while total < stop:
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


def install() -> None:
    """Use the faster division in every HSplit and VSplit of this process."""
    containers.HSplit._divide_heights = _divide_heights  # type: ignore[method-assign]
    containers.VSplit._divide_widths = _divide_widths  # type: ignore[method-assign]


__all__ = ["divide", "install"]
