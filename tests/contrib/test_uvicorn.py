"""``aiopod.contrib.uvicorn.UvicornAdapter``: real HTTP on loopback; the pod, not uvicorn, owns the signals."""

from __future__ import annotations

import json
import signal
import threading
import urllib.error
import urllib.request

import pytest

from tests.contrib.conftest import STOP_WAIT_TIME, Request, Write, free_port, start
from tests.proc import stop


def get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        body: bytes = response.read()
        return body


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_app_reaches_the_pod_and_the_stop_signal_goes_through_the_pod(name: str) -> None:
    port = free_port()
    with start("contrib_uvicorn.py", env={"AIOPOD_PORT": str(port)}) as proc:
        proc.wait_for(f"uvicorn running on http://127.0.0.1:{port}")
        proc.wait_for("clock: tick 1")
        assert get(port, "/") == b"hello"
        assert json.loads(get(port, "/beans")) == {"beans": 2, "label": "web"}
        code, elapsed = stop(proc, getattr(signal, name))
    out = proc.output
    # uvicorn's own handlers would have kept the signal from the pod and re-raised it at the end
    assert code == 0, out
    assert f"{name}: stopping; waiting up to 3 s for 2 running beans" in out
    assert f"clock: on_stop ({name})" in out
    assert "app: lifespan shutdown" in out
    assert "cancelling" not in out
    assert elapsed < STOP_WAIT_TIME, out


def test_a_slow_request_is_cut_short_within_stop_wait_time(write: Write) -> None:
    write(
        "slow.py",
        """
        import asyncio

        async def app(scope, receive, send):
            assert scope["type"] == "http"
            print("request started", flush=True)
            await asyncio.sleep(60)
        """,
    )
    port = free_port()
    config = write(
        "config.py",
        f"""
        STOP_WAIT_TIME = 2
        BEANS = [{{"core": "aiopod.contrib.uvicorn.UvicornAdapter", "app": "slow:app", "port": {port},
                   "lifespan": "off"}}]
        """,
    )
    with start(config) as proc:
        proc.wait_for(f"uvicorn running on http://127.0.0.1:{port}")
        statuses: list[int] = []

        def request() -> None:
            try:
                get(port, "/")
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)

        client = threading.Thread(target=request)
        client.start()
        proc.wait_for("request started")
        code, elapsed = stop(proc)
        client.join(5)
    out = proc.output
    assert code == 0, out
    assert statuses == [500]
    assert "timeout graceful shutdown exceeded" in out
    assert "cancelling" not in out  # uvicorn ended by itself, before the pod had to cancel it
    assert 0.9 < elapsed < 2.0, out


def test_port_in_use_fails_the_bean_naming_the_address(write: Write, busy_port: int) -> None:
    config = write(
        "busy.py",
        "BEANS = [{'core': 'aiopod.contrib.uvicorn.UvicornAdapter', 'label': 'web', "
        f"'app': 'contrib_asgi_app:app', 'port': {busy_port}}}]\n",
    )
    with start(config) as proc:
        code = proc.wait()
    out = proc.output
    assert code == 1, out
    assert "bean #1 'web' (aiopod.contrib.uvicorn.UvicornAdapter) failed" in out
    assert f"BindError: uvicorn cannot listen on 127.0.0.1:{busy_port}: Address already in use" in out


def test_bad_app_and_options_are_config_errors(write: Write) -> None:
    config = write(
        "bad.py",
        """
        BEANS = [
            {"core": "aiopod.contrib.uvicorn.UvicornAdapter", "app": "contrib_asgi_app:nope", "prot": 80},
            {"core": "aiopod.contrib.uvicorn.UvicornAdapter", "app": "contrib_asgi_app:json", "workers": 4},
            {"core": "aiopod.contrib.uvicorn.UvicornAdapter", "port": 8000},
        ]
        """,
    )
    with start(config) as proc:
        code = proc.wait()
    errors = [line.split(": ", 3)[-1] for line in proc.output.splitlines() if line.startswith("aiopod: error:")]
    assert code == 2, proc.output
    assert errors == [
        "BEANS[0]: app: cannot import 'contrib_asgi_app:nope': module 'contrib_asgi_app' has no attribute 'nope'",
        "BEANS[0]: prot: not a uvicorn.Config option (check the spelling)",
        "BEANS[1]: app: 'contrib_asgi_app:json' is a module, not an ASGI application (a callable)",
        "BEANS[1]: workers: not supported in a pod: one pod runs one server; run several pods behind a load "
        "balancer instead",
        'BEANS[2]: app: missing; add "app": "package.module:app" (an ASGI application)',
    ]


def test_a_failing_lifespan_startup_fails_the_bean_not_the_process(write: Write) -> None:
    write(
        "broken.py",
        """
        async def app(scope, receive, send):
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "no database"})
        """,
    )
    config = write(
        "config.py",
        f"""
        BEANS = [
            {{"core": "aiopod.contrib.uvicorn.UvicornAdapter", "label": "web", "app": "broken:app",
              "port": {free_port()}, "lifespan": "on"}},
        ]
        """,
    )
    with start(config) as proc:
        code = proc.wait()
    out = proc.output
    assert code == 1, out
    assert "no database" in out
    assert "bean #1 'web' (aiopod.contrib.uvicorn.UvicornAdapter) failed" in out
    assert "AiopodError: uvicorn could not start 'broken:app' (exit status 3); see its error above" in out


SLOW_ASGI_APP = """
    import asyncio


    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await asyncio.sleep(0.2)  # a cleanup that takes a moment
                    print("app: lifespan shutdown", flush=True)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        seconds = float(scope["query_string"].decode().partition("=")[2])
        print(f"request for {seconds:g} s started", flush=True)
        await asyncio.sleep(seconds)
        body = f"slept {seconds:g} s".encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})
"""


@pytest.mark.parametrize("seconds", [6, 20])
def test_sigterm_with_a_request_in_flight_runs_the_lifespan_shutdown_within_stop_wait_time(
    write: Write, seconds: int
) -> None:
    write("slow.py", SLOW_ASGI_APP)
    port = free_port()
    config = write(
        "config.py",
        f"""
        STOP_WAIT_TIME = 5
        BEANS = [{{"core": "aiopod.contrib.uvicorn.UvicornAdapter", "app": "slow:app", "port": {port},
                   "lifespan": "on", "access_log": False}}]
        """,
    )
    with start(config) as proc:
        proc.wait_for(f"uvicorn running on http://127.0.0.1:{port}")
        slow = Request(port, f"/slow?seconds={seconds}")
        proc.wait_for(f"request for {seconds} s started")
        quick = Request(port, "/slow?seconds=1")  # ends within its time: answered normally
        proc.wait_for("request for 1 s started")
        code, elapsed = stop(proc)  # uvicorn would install its own handler for this; the pod owns it
        quick_reply, slow_reply = quick.result(), slow.result()
    out = proc.output
    assert code == 0, out
    assert quick_reply == (200, b"slept 1 s"), out
    assert slow_reply[0] == 500, out  # uvicorn's answer to a request it cancelled before it responded
    assert "timeout graceful shutdown exceeded" in out
    assert "app: lifespan shutdown" in out
    assert "cancelling" not in out  # the adapter ended by itself, before the pod had to cancel it
    assert 3.5 < elapsed < 5.0, out
