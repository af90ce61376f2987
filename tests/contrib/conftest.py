"""Helpers for the adapter tests: each runs ``aiopod run -c ...`` in a subprocess on free loopback ports."""

from __future__ import annotations

import re
import socket
import threading
import urllib.error
import urllib.request
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


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port that another socket is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


class Request(threading.Thread):
    """An HTTP GET on 127.0.0.1 in a thread of its own: ``status`` and ``body`` once it is done."""

    def __init__(self, port: int, path: str, timeout: float = 30.0) -> None:
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}{path}"
        self.timeout = timeout
        self.status: int | None = None
        self.body = b""
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as response:
                self.status, self.body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            self.status, self.body = exc.code, exc.read()
        except Exception as exc:  # kept for the test's assertion message
            self.error = exc

    def result(self) -> tuple[int | None, bytes]:
        self.join(self.timeout)
        assert not self.is_alive(), f"{self.url}: no answer within {self.timeout} s"
        assert self.error is None, f"{self.url}: {self.error!r}"
        return self.status, self.body
