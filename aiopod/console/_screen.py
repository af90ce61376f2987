"""prompt_toolkit's per-cell loops of a render at C speed, writing the same bytes.

A render fills a screen of cells (a dict per row, 160 and more of them at a wide
terminal) and then writes what changed since the last one. Several steps visit every
cell of an area in a Python loop: the screen diff compares every cell of every row,
although a key changes one or two rows; each window sets a mouse handler and, with a
style, its style on each of its cells. Here:

- the diff skips the rows that are equal to the last screen's (one dict comparison in
  C, cells are shared objects from prompt_toolkit's cache): prompt_toolkit writes
  nothing for such a row, so it is handed the other rows only;
- a window's mouse handlers and background are set a row at a time (``dict.update``);
- a style is added to an area's cells once per distinct cell, not once per cell.

``tests/console/test_screen.py`` renders ptpython's layout through a sequence of typed
states both ways and compares the bytes written. ``install()`` is idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import prompt_toolkit.renderer as renderer
from prompt_toolkit.layout import containers
from prompt_toolkit.layout.mouse_handlers import MouseHandlers
from prompt_toolkit.layout.screen import _CHAR_CACHE, Char, Screen, WritePosition

from ._switch import breathe

_DIFF = renderer._output_screen_diff
_ORIGINAL: dict[str, Callable[..., Any]] = {
    "diff": _DIFF,
    "mouse": MouseHandlers.set_mouse_handler_for_range,
    "fill_area": Screen.fill_area,
    "fill_bg": containers.Window._fill_bg,
}


def _output_screen_diff(
    app: Any,
    output: Any,
    screen: Screen,
    current_pos: Any,
    color_depth: Any,
    previous_screen: Screen | None,
    last_style: str | None,
    is_done: bool,
    **kwargs: Any,
) -> Any:
    """prompt_toolkit's diff, given only the rows that changed since ``previous_screen``.

    The rows equal to the last screen's are taken out of both screens for the call (an
    absent row is an empty row in both, for which nothing is written) and put back.
    prompt_toolkit redraws everything when there is no previous screen, when the width
    changed or when the input is done: then it gets the screens as they are.
    """
    breathe()  # between the steps of a render (see _switch.py)
    size = kwargs.get("size")
    if previous_screen is None or is_done or size is None or kwargs.get("previous_width") != size.columns:
        return _DIFF(app, output, screen, current_pos, color_depth, previous_screen, last_style, is_done, **kwargs)
    new_rows, old_rows = screen.data_buffer, previous_screen.data_buffer
    row_count = min(max(screen.height, previous_screen.height), size.rows)
    same = [y for y in range(row_count) if y in new_rows and y in old_rows and new_rows[y] == old_rows[y]]
    kept = [(y, new_rows.pop(y), old_rows.pop(y)) for y in same]
    try:
        return _DIFF(app, output, screen, current_pos, color_depth, previous_screen, last_style, is_done, **kwargs)
    finally:
        for y, new_row, old_row in kept:
            new_rows[y] = new_row
            old_rows[y] = old_row


def _set_mouse_handler_for_range(
    self: MouseHandlers, x_min: int, x_max: int, y_min: int, y_max: int, handler: Callable[..., Any]
) -> None:
    breathe()
    if x_max <= x_min:
        return
    cells = dict.fromkeys(range(x_min, x_max), handler)
    rows = self.mouse_handlers
    for y in range(y_min, y_max):
        rows[y].update(cells)


def _fill_area(self: Screen, write_position: WritePosition, style: str = "", after: bool = False) -> None:
    breathe()
    if not style.strip():
        return
    prepend, append = ("", " " + style) if after else (style + " ", "")
    xmin = write_position.xpos
    xmax = xmin + write_position.width
    styled: dict[int, tuple[Char, Char]] = {}  # id of a cell -> (that cell, kept alive; it with the style)
    for y in range(write_position.ypos, write_position.ypos + write_position.height):
        row = self.data_buffer[y]
        for x in range(xmin, xmax):
            cell = row[x]
            found = styled.get(id(cell))
            if found is None:
                found = styled[id(cell)] = (cell, _CHAR_CACHE[cell.char, prepend + cell.style + append])
            row[x] = found[1]


def _fill_bg(self: containers.Window, screen: Screen, write_position: WritePosition, erase_bg: bool) -> None:
    char = self.char() if callable(self.char) else self.char
    if erase_bg or char:
        wp = write_position
        if wp.width <= 0:
            return
        cells = dict.fromkeys(range(wp.xpos, wp.xpos + wp.width), _CHAR_CACHE[char or " ", ""])
        for y in range(wp.ypos, wp.ypos + wp.height):
            screen.data_buffer[y].update(cells)


def install() -> None:
    """Use these loops in every render of this process."""
    renderer._output_screen_diff = _output_screen_diff  # type: ignore[assignment]
    MouseHandlers.set_mouse_handler_for_range = _set_mouse_handler_for_range  # type: ignore[method-assign]
    Screen.fill_area = _fill_area  # type: ignore[method-assign]
    containers.Window._fill_bg = _fill_bg  # type: ignore[method-assign]


def uninstall() -> None:
    """prompt_toolkit's own loops again (for comparisons)."""
    renderer._output_screen_diff = _ORIGINAL["diff"]
    MouseHandlers.set_mouse_handler_for_range = _ORIGINAL["mouse"]  # type: ignore[method-assign]
    Screen.fill_area = _ORIGINAL["fill_area"]  # type: ignore[method-assign]
    containers.Window._fill_bg = _ORIGINAL["fill_bg"]  # type: ignore[method-assign]


__all__ = ["install", "uninstall"]
