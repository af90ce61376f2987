"""``NOTIFY_SOCKET``: READY=1 once the beans started, STOPPING=1 when a stop begins."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from pathlib import Path

from tests.proc import aiopod

BEAN = """
import asyncio
from aiopod import pass_context

@pass_context
async def idle(context, **kw):
    print("bean " + "started", flush=True)
    await asyncio.sleep(3600)
"""


def test_ready_and_stopping_reach_the_notify_socket(tmp_path: Path, write: Callable[[str, str], Path]) -> None:
    write("beans.py", BEAN)
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(address)
        server.settimeout(10)
        proc = aiopod("run", "--stop-wait-time", "0.2", "beans:idle", cwd=tmp_path, env={"NOTIFY_SOCKET": address})
        try:
            assert server.recv(1024) == b"READY=1"
            proc.wait_for("bean started")
            proc.signal(signal.SIGTERM)
            assert server.recv(1024) == b"STOPPING=1"
            assert proc.wait() == 0
        finally:
            proc.kill()


def test_an_unreachable_notify_socket_is_logged_not_fatal(tmp_path: Path, write: Callable[[str, str], Path]) -> None:
    write("beans.py", BEAN)
    missing = str(tmp_path / "nobody-listens.sock")
    proc = aiopod("run", "--stop-wait-time", "0.2", "beans:idle", cwd=tmp_path, env={"NOTIFY_SOCKET": missing})
    try:
        proc.wait_for("could not notify the service manager")
        proc.wait_for("bean started")
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
    finally:
        proc.kill()
