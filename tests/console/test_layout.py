"""The console's faster split division gives prompt_toolkit's own sizes."""

from __future__ import annotations

import random

from prompt_toolkit.layout import containers
from prompt_toolkit.layout.containers import HSplit, VSplit, Window
from prompt_toolkit.layout.dimension import Dimension
from prompt_toolkit.layout.screen import WritePosition

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
