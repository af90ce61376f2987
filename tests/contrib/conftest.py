"""Helpers for the adapter tests: each runs ``aiopod run -c ...`` in a subprocess on free loopback ports."""

from __future__ import annotations

import re
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.proc import Proc, aiopod

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: STOP_WAIT_TIME of the example configs: every stop must end well within it.
STOP_WAIT_TIME = 3.0

Write = Callable[[str, str], Path]
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


def printed(output: str) -> str:
    """The output without the pod's log lines: what the beans printed, in order."""
    return "".join(line for line in output.splitlines(keepends=True) if not _LOG_LINE.match(line))


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(config: str | Path, env: dict[str, str] | None = None, **kw: object) -> Proc:
    """``aiopod run -c config`` in the examples folder (so its modules import)."""
    return aiopod("run", "-c", str(config), cwd=EXAMPLES, env=env, **kw)


def stop(proc: Proc, sig: int = signal.SIGTERM) -> tuple[int, float]:
    """Send ``sig``; return the exit status and the seconds the pod took to exit."""
    sent = proc.signal(sig)
    code = proc.wait()
    return code, time.monotonic() - sent


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port that another socket is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])
