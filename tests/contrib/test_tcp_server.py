"""``aiopod.contrib.tcp_server.TCPServerAdapter``: a Server subclass and a Protocol, over real sockets."""

from __future__ import annotations

import socket

import pytest

from tests.contrib.conftest import STOP_WAIT_TIME, Write, free_port, start
from tests.proc import stop


def round_trip(port: int, data: bytes) -> tuple[socket.socket, bytes]:
    """Connect, send ``data``, return the open connection and the first reply."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn.sendall(data)
    return conn, conn.recv(1024)


def test_echo_round_trips_then_sigterm_closes_listeners_and_open_connections() -> None:
    port, protocol_port = free_port(), free_port()
    env = {"AIOPOD_PORT": str(port), "AIOPOD_PROTOCOL_PORT": str(protocol_port)}
    with start("contrib_tcp_server.py", env=env) as proc:
        proc.wait_for(f"tcp server listening on 127.0.0.1:{protocol_port}")
        proc.wait_for(f"tcp server listening on 127.0.0.1:{port}")
        server_conn, server_reply = round_trip(port, b"hello pod\n")
        protocol_conn, protocol_reply = round_trip(protocol_port, b"hello protocol")
        with server_conn, protocol_conn:
            assert server_reply == b"HELLO POD\n"
            assert protocol_reply == f"{protocol_port}: hello protocol".encode()
            code, elapsed = stop(proc)
            assert server_conn.recv(1024) == b""  # closed by the server
            assert protocol_conn.recv(1024) == b""
    out = proc.output
    assert code == 0, out
    assert "echo server got SIGTERM" in out
    assert "echo server cleaned up" in out
    assert "cancelling" not in out
    assert elapsed < STOP_WAIT_TIME, out
    for listening in (port, protocol_port):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", listening)) != 0


def test_port_in_use_fails_the_bean_naming_the_address(write: Write, busy_port: int) -> None:
    config = write(
        "busy.py",
        f"BEANS = [{{'core': 'aiopod.contrib.tcp_server.TCPServerAdapter', 'label': 'tcp', 'port': {busy_port}}}]\n",
    )
    with start(config) as proc:
        code = proc.wait()
    out = proc.output
    assert code == 1, out
    assert "bean #1 'tcp' (aiopod.contrib.tcp_server.TCPServerAdapter) failed" in out
    assert f"BindError: tcp server cannot listen on 127.0.0.1:{busy_port}: Address already in use" in out


def test_bad_server_and_protocol_are_config_errors(write: Write) -> None:
    config = write(
        "bad.py",
        """
        BEANS = [{
            "core": "aiopod.contrib.tcp_server.TCPServerAdapter",
            "server": "contrib_servers.Clock",
            "protocol": "contrib_servers.NoSuchProtocol",
            "port": 70000,
        }, {
            "core": "aiopod.contrib.tcp_server.TCPServerAdapter",
            "backlog": "many", "limit": 0, "shutdown_timeout": float("inf"),
        }]
        """,
    )
    with start(config) as proc:
        code = proc.wait()
    errors = [line for line in proc.output.splitlines() if line.startswith("aiopod: error:")]
    assert code == 2, proc.output
    assert errors == [
        f"aiopod: error: {config}: BEANS[0]: port: 70000 is not a port: give a number from 0 to 65535",
        f"aiopod: error: {config}: BEANS[0]: server: 'contrib_servers.Clock' is not a subclass of "
        "aiopod.contrib.tcp_server.Server",
        f"aiopod: error: {config}: BEANS[0]: protocol: cannot import 'contrib_servers.NoSuchProtocol': "
        "module 'contrib_servers' has no attribute 'NoSuchProtocol'",
        f"aiopod: error: {config}: BEANS[1]: backlog: 'many' must be a whole number >= 0",
        f"aiopod: error: {config}: BEANS[1]: limit: 0 must be a whole number >= 1",
        f"aiopod: error: {config}: BEANS[1]: shutdown_timeout: inf must be a number of seconds >= 0",
    ]


@pytest.mark.parametrize("shutdown_timeout", [1, 30])
def test_sigterm_with_a_connection_in_flight_closes_it_and_runs_on_cleanup_within_stop_wait_time(
    write: Write, shutdown_timeout: int
) -> None:
    write(
        "slow.py",
        """
        import asyncio

        from aiopod.contrib.tcp_server import Server


        class Slow(Server):
            async def on_connect(self, reader, writer):
                await reader.readline()
                print("connection busy", flush=True)
                await asyncio.sleep(20)
                writer.write(b"too late\\n")

            def on_signal(self, sig):
                print("slow server got", sig, flush=True)

            async def on_cleanup(self):
                await asyncio.sleep(0.2)  # a cleanup that takes a moment
                print("slow server cleaned up", flush=True)
        """,
    )
    port = free_port()
    config = write(
        "config.py",
        f"""
        STOP_WAIT_TIME = 3
        BEANS = [{{"core": "aiopod.contrib.tcp_server.TCPServerAdapter", "server": "slow.Slow", "port": {port},
                   "shutdown_timeout": {shutdown_timeout}}}]
        """,
    )
    with start(config) as proc:
        proc.wait_for(f"tcp server listening on 127.0.0.1:{port}")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"work\n")
            proc.wait_for("connection busy")
            code, elapsed = stop(proc)
            assert conn.recv(1024) == b""  # closed by the server, without the late reply
    out = proc.output
    assert code == 0, out
    assert "slow server got SIGTERM" in out
    assert "tcp server: closing 1 connections still open" in out
    assert "slow server cleaned up" in out
    assert "cancelling" not in out
    # shutdown_timeout, or STOP_WAIT_TIME less a quarter of it when that is shorter
    low, high = (0.9, 2.0) if shutdown_timeout == 1 else (2.1, 3.0)
    assert low < elapsed < high, out
