"""``aiopod.contrib.aiohttp.WebAdapter``: real HTTP on loopback and on a unix socket; cleanup on stop."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest

from tests.contrib.conftest import STOP_WAIT_TIME, Request, Write, free_port, start
from tests.proc import stop


def get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        body: bytes = response.read()
        return body


def test_app_reaches_the_pod_and_sigterm_runs_its_cleanup() -> None:
    port = free_port()
    with start("contrib_aiohttp.py", env={"AIOPOD_PORT": str(port)}) as proc:
        proc.wait_for(f"aiohttp running on http://127.0.0.1:{port}")
        assert get(port, "/") == b"hello"
        assert json.loads(get(port, "/beans")) == {"beans": 2, "label": "web"}
        code, elapsed = stop(proc)
    out = proc.output
    assert code == 0, out
    assert "app: cleanup" in out
    assert "clock: on_stop (SIGTERM)" in out
    assert "cancelling" not in out
    assert elapsed < STOP_WAIT_TIME, out


def test_unix_socket_path_with_a_factory_given_as_an_object(write: Write, tmp_path: Path) -> None:
    path = tmp_path / "web.sock"
    config = write(
        "unix.py",
        f"""
        from contrib_aiohttp_app import make_app

        BEANS = [{{"core": "aiopod.contrib.aiohttp.WebAdapter", "app": make_app, "path": {str(path)!r}}}]
        """,
    )
    with start(config) as proc:
        proc.wait_for(f"aiohttp running on http://unix:{path}:")
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(5)
            conn.connect(str(path))
            conn.sendall(b"GET /beans HTTP/1.0\r\nHost: pod\r\n\r\n")
            reply = b""
            while chunk := conn.recv(4096):
                reply += chunk
        code, _ = stop(proc)
    assert code == 0, proc.output
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK")
    assert json.loads(body) == {"beans": 1, "label": None}
    assert not path.exists()


def test_port_in_use_fails_the_bean_naming_the_address(write: Write, busy_port: int) -> None:
    config = write(
        "busy.py",
        "BEANS = [{'core': 'aiopod.contrib.aiohttp.WebAdapter', 'label': 'web', "
        f"'app': 'contrib_aiohttp_app:make_app', 'port': {busy_port}}}]\n",
    )
    with start(config) as proc:
        code = proc.wait()
    out = proc.output
    assert code == 1, out
    assert "bean #1 'web' (aiopod.contrib.aiohttp.WebAdapter) failed" in out
    assert f"BindError: aiohttp cannot listen on 127.0.0.1:{busy_port}: Address already in use" in out


def test_wrong_app_type_and_bad_import_are_config_errors(write: Write) -> None:
    config = write(
        "bad.py",
        """
        BEANS = [
            {"core": "aiopod.contrib.aiohttp.WebAdapter", "app": "contrib_aiohttp_app.web"},
            {"core": "aiopod.contrib.aiohttp.WebAdapter", "app": "contrib_aiohttp_app:no_such_app"},
        ]
        """,
    )
    with start(config) as proc:
        code = proc.wait()
    errors = [line.split(": ", 3)[-1] for line in proc.output.splitlines() if line.startswith("aiopod: error:")]
    assert code == 2, proc.output
    assert errors == [
        "BEANS[0]: app: 'contrib_aiohttp_app.web' is a module, not an aiohttp web.Application or a function "
        "returning one",
        "BEANS[1]: app: cannot import 'contrib_aiohttp_app:no_such_app': module 'contrib_aiohttp_app' has no "
        "attribute 'no_such_app'",
    ]


SLOW_APP = """
    import asyncio

    from aiohttp import web


    async def slow(request):
        seconds = float(request.query["seconds"])
        print(f"request for {seconds:g} s started", flush=True)
        await asyncio.sleep(seconds)
        print(f"request for {seconds:g} s done", flush=True)
        return web.Response(text=f"slept {seconds:g} s")


    async def on_shutdown(app):
        print("app: shutdown", flush=True)


    async def on_cleanup(app):
        await asyncio.sleep(0.2)  # a cleanup that takes a moment
        print("app: cleanup", flush=True)


    def make_app():
        app = web.Application()
        app.add_routes([web.get("/slow", slow)])
        app.on_shutdown.append(on_shutdown)
        app.on_cleanup.append(on_cleanup)
        return app
"""


@pytest.mark.parametrize("seconds", [6, 20])
def test_sigterm_with_a_request_in_flight_answers_503_and_runs_cleanup_within_stop_wait_time(
    write: Write, seconds: int
) -> None:
    write("slow.py", SLOW_APP)
    port = free_port()
    config = write(
        "config.py",
        f"""
        STOP_WAIT_TIME = 5
        BEANS = [{{"core": "aiopod.contrib.aiohttp.WebAdapter", "app": "slow:make_app", "port": {port},
                   "access_log": False}}]
        """,
    )
    with start(config) as proc:
        proc.wait_for(f"aiohttp running on http://127.0.0.1:{port}")
        slow = Request(port, f"/slow?seconds={seconds}")
        proc.wait_for(f"request for {seconds} s started")
        quick = Request(port, "/slow?seconds=1")  # ends within its time: answered normally
        proc.wait_for("request for 1 s started")
        code, elapsed = stop(proc)
        quick_reply, slow_reply = quick.result(), slow.result()
    out = proc.output
    assert code == 0, out
    assert quick_reply == (200, b"slept 1 s"), out
    assert slow_reply == (503, b"503: the server is stopping\n"), out
    assert "app: shutdown" in out
    assert "app: cleanup" in out
    assert "aiohttp: 1 requests still running at the end of their time after SIGTERM; answering them 503" in out
    assert "cancelling" not in out  # the adapter ended by itself, before the pod had to cancel it
    assert f"request for {seconds} s done" not in out
    # requests are cut 1 s before STOP_WAIT_TIME ends, then the cleanup (0.2 s) runs
    assert 3.5 < elapsed < 5.0, out


def test_a_shutdown_timeout_shorter_than_stop_wait_time_cuts_requests_sooner(write: Write) -> None:
    write("slow.py", SLOW_APP)
    port = free_port()
    config = write(
        "config.py",
        f"""
        STOP_WAIT_TIME = 5
        BEANS = [{{"core": "aiopod.contrib.aiohttp.WebAdapter", "app": "slow:make_app", "port": {port},
                   "shutdown_timeout": 1, "access_log": False}}]
        """,
    )
    with start(config) as proc:
        proc.wait_for(f"aiohttp running on http://127.0.0.1:{port}")
        slow = Request(port, "/slow?seconds=20")
        proc.wait_for("request for 20 s started")
        code, elapsed = stop(proc)
        reply = slow.result()
    out = proc.output
    assert code == 0, out
    assert reply[0] == 503
    assert "app: cleanup" in out
    assert 0.9 < elapsed < 2.5, out
