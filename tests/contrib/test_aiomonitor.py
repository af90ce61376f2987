"""``aiopod.contrib.aiomonitor.AioMonitorAdapter``: ``ps`` over its telnet UI, a clean stop, safe defaults."""

from __future__ import annotations

import shutil

import pytest

from tests.contrib.conftest import STOP_WAIT_TIME, Write, free_port, start
from tests.proc import stop

pexpect = pytest.importorskip("pexpect")


def monitor_env() -> dict[str, str]:
    return {
        "AIOPOD_MONITOR_PORT": str(free_port()),
        "AIOPOD_MONITOR_WEBUI_PORT": str(free_port()),
        "AIOPOD_MONITOR_CONSOLE_PORT": str(free_port()),
    }


@pytest.mark.skipif(shutil.which("telnet") is None, reason="needs the telnet client")
def test_ps_and_console_over_telnet_then_sigterm_closes_the_monitor() -> None:
    env = monitor_env()
    port = env["AIOPOD_MONITOR_PORT"]
    with start("contrib_aiomonitor.py", env=env) as proc:
        proc.wait_for(f"aiomonitor running on telnet://127.0.0.1:{port}")
        session = pexpect.spawn("telnet", ["127.0.0.1", port], dimensions=(40, 200), timeout=10, encoding="utf-8")
        try:
            session.expect("monitor >>> ")
            session.sendline("ps")
            session.expect(r"(\d+) tasks running\r\n(\+-+\+\r\n)(.*\r\n)\2((?:\|.*\|\r\n)+)\2")
            count, rows = int(session.match[1]), session.match[4].splitlines()
            assert len(rows) == count
            # both beans are adapters (aiopod.contrib.adapter.Adapter): the monitor and a simple.Server
            assert any(" bean#1 " in row and "Adapter.__call__()" in row for row in rows), rows
            assert any(" bean#2 " in row and "Adapter.__call__()" in row for row in rows), rows
            session.sendline("console")  # the Python console has the extra kwargs, pod and context
            session.expect("This console is running in an asyncio event loop")
            session.expect(">>> ")
            session.sendline("greeting, len(pod.beans), context.label")
            session.expect(r"\('hello from the pod', 2, 'monitor'\)")
            code, elapsed = stop(proc)  # with the telnet session and its console still open
            session.expect(pexpect.EOF)
        finally:
            session.close(force=True)
    out = proc.output
    assert code == 0, out
    assert "clock: on_stop (SIGTERM)" in out
    assert "did not close" not in out and "cancelling" not in out
    assert elapsed < STOP_WAIT_TIME, out


def test_port_in_use_fails_the_bean_naming_the_address(write: Write, busy_port: int) -> None:
    config = write(
        "busy.py",
        "BEANS = [{'core': 'aiopod.contrib.aiomonitor.AioMonitorAdapter', 'label': 'monitor', "
        f"'port': {free_port()}, 'webui_port': {busy_port}, 'console_port': {free_port()}}}]\n",
    )
    with start(config) as proc:
        code = proc.wait()
    out = proc.output
    assert code == 1, out
    assert "bean #1 'monitor' (aiopod.contrib.aiomonitor.AioMonitorAdapter) failed" in out
    assert f"BindError: aiomonitor (webui_port) cannot listen on 127.0.0.1:{busy_port}: Address already in use" in out


def test_a_host_other_than_loopback_is_refused(write: Write) -> None:
    config = write("open.py", "BEANS = [{'core': 'aiopod.contrib.aiomonitor.AioMonitorAdapter', 'host': '0.0.0.0'}]\n")
    with start(config) as proc:
        code = proc.wait()
    assert code == 2, proc.output
    assert f"aiopod: error: {config}: BEANS[0]: host: '0.0.0.0' is not loopback" in proc.output
