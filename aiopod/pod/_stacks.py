"""Stacks for people: every thread's (even when the main thread is stuck) and the beans', grouped."""

from __future__ import annotations

import faulthandler
import io
import linecache
import sys
import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .bean import Bean


def dump_threads(file: TextIO | None = None) -> None:
    """Write every thread's stack to ``file`` (stderr), even when the main thread is stuck."""
    out = sys.stderr if file is None else file
    try:
        out.flush()
        faulthandler.dump_traceback(out, all_threads=True)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):  # no file descriptor
        for ident, frame in sys._current_frames().items():
            out.write(f"Thread 0x{ident:016x} (most recent call first):\n")
            out.write("".join(reversed(traceback.format_stack(frame))))


def bean_stacks(beans: Iterable[Bean]) -> str:
    """The beans' stacks, beans suspended at the same place grouped (100k idle beans are one)."""
    groups: dict[tuple[tuple[str, int, str], ...], list[Bean]] = {}
    for bean in beans:
        frames = tuple((f.f_code.co_filename, f.f_lineno, f.f_code.co_name) for f in bean.stack())
        groups.setdefault(frames, []).append(bean)
    lines = []
    for frames, members in groups.items():
        names = ", ".join(b.describe() for b in members[:5])
        more = f" and {len(members) - 5} more" if len(members) > 5 else ""
        lines.append(f"Bean{'s' if len(members) > 1 else ''} {names}{more} (most recent call last):")
        for filename, lineno, name in frames:
            lines.append(f'  File "{filename}", line {lineno}, in {name}')
            code = linecache.getline(filename, lineno).strip()
            if code:
                lines.append(f"    {code}")
    return "".join(f"{line}\n" for line in lines)


def write_with_threads(text: str) -> None:
    """``text`` then every thread's stack, to stderr (from a thread: never re-entering a write)."""
    sys.stderr.write(text)
    dump_threads()
    sys.stderr.flush()
