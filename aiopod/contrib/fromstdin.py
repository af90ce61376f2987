"""A producer-consumer flow fed by the lines of standard input; it ends at end of input.

::

    from aiopod.contrib.fromstdin import Server

    class Count(Server):
        async def consume(self, line, **kwargs):
            print(len(line))

    $ seq 100 | aiopod run -c count.py

Lines are ``bytes`` with their line ending, as in the seed; give ``encoding="utf-8"``
to get ``str``. Standard input is read without blocking the loop: through the loop's
pipe transport when it is a pipe, a terminal or a socket, else (a regular file) in a
worker thread.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import stat
import sys
from collections.abc import AsyncIterator, Mapping
from typing import Any, BinaryIO

from ._common import whole_problems
from .pcflow import Server as FlowServer

#: Longest line accepted, in bytes (asyncio's StreamReader limit).
LINE_LIMIT = 1 << 20


class Server(FlowServer):
    """A pcflow whose producer yields the lines of standard input (kwargs: ``encoding``, ``line_limit``)."""

    @classmethod
    def kwargs_problems(cls, kwargs: Mapping[str, Any]) -> list[str]:
        """Those of pcflow, a ``line_limit`` that is not a whole number >= 1, an unknown ``encoding``."""
        problems = super().kwargs_problems(kwargs) + whole_problems(kwargs, {"line_limit": 1})
        encoding = kwargs.get("encoding")
        if encoding is not None:
            try:
                codecs.lookup(encoding)
            except (LookupError, TypeError):
                problems.append(f"encoding: {encoding!r} is not a text encoding Python knows (such as 'utf-8')")
        return problems

    async def produce(
        self, encoding: str | None = None, line_limit: int = LINE_LIMIT, **kwargs: Any
    ) -> AsyncIterator[bytes | str]:
        async for line in read_lines(sys.stdin.buffer, int(line_limit)):
            yield line if encoding is None else line.decode(encoding)


async def read_lines(stream: BinaryIO, limit: int = LINE_LIMIT) -> AsyncIterator[bytes]:
    """The lines of ``stream`` (a pipe, terminal, socket or file), read without blocking the loop."""
    fd = stream.fileno()
    if stat.S_ISREG(os.fstat(fd).st_mode):  # the loop cannot watch a file (uvloop aborts the process)
        while line := await asyncio.to_thread(stream.readline):
            yield line
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit)
    # A duplicate descriptor, so that closing the transport leaves the process's stdin open.
    pipe = os.fdopen(os.dup(fd), "rb", buffering=0)
    was_blocking = os.get_blocking(fd)
    try:
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    except BaseException:
        pipe.close()
        raise
    try:
        while line := await reader.readline():
            yield line
    finally:
        transport.close()
        # The transport made the descriptor non-blocking, and that flag is shared with
        # whoever handed us stdin (a shell that would then see EAGAIN): put it back.
        with contextlib.suppress(OSError):
            os.set_blocking(fd, was_blocking)


__all__ = ["Server", "read_lines"]
