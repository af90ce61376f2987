"""``aiopod.contrib.adapter``: the one declared adapter shape, its stop helper, and the shared network checks."""

from __future__ import annotations

import importlib
import re
import warnings

import pytest

from aiopod.contrib import _net
from aiopod.contrib.adapter import Adapter
from tests.contrib.conftest import Write, start
from tests.proc import stop

ADAPTERS = [
    ("simple", "Server"),
    ("pcflow", "Server"),
    ("fromstdin", "Server"),
    ("tcp_server", "TCPServerAdapter"),
    ("uvicorn", "UvicornAdapter"),
    ("aiohttp", "WebAdapter"),
    ("aiomonitor", "AioMonitorAdapter"),
]


@pytest.mark.parametrize(("module", "name"), ADAPTERS)
def test_every_adapter_has_the_declared_shape_and_writes_no_second_check_or_stop_wiring(module: str, name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # aiomonitor imports a name click deprecates
        cls = getattr(importlib.import_module(f"aiopod.contrib.{module}"), name)
    assert issubclass(cls, Adapter)
    for klass in cls.__mro__:
        if klass is not Adapter and klass.__module__.startswith("aiopod."):
            # the kwargs check and the call (stop wiring, then serve) are written once, in Adapter
            assert "check_kwargs" not in vars(klass), klass
            assert "__call__" not in vars(klass), klass
    assert cls.check_kwargs.__func__ is Adapter.check_kwargs.__func__


OWN_ADAPTER = """
    import asyncio

    from aiopod.contrib.adapter import Adapter


    class Waiter(Adapter):
        @classmethod
        def kwargs_problems(cls, kwargs):
            if not isinstance(kwargs.get("name"), str):
                return [f"name: {kwargs.get('name')!r} must be a string; add 'name': 'me'"]
            return []

        def on_stop_signal(self, signal, name, **kwargs):
            print(f"{name}: on_stop_signal {signal}", flush=True)

        async def serve(self, name, **kwargs):
            print(f"{name}: serving, a stop would leave {self.stop_request.time_left():.2f} s", flush=True)
            await self.stop_request.wait()
            left = self.stop_request.time_left()
            print(f"{name}: stopped by {self.stop_request.signal}, {left:.1f} s left", flush=True)
            await self.stop_request.settled()
"""


def test_an_adapter_of_ones_own_is_checked_before_start_and_sees_the_stop(write: Write) -> None:
    write("own.py", OWN_ADAPTER)
    config = write("config.py", "STOP_WAIT_TIME = 4\nBEANS = [{'core': 'own.Waiter', 'name': 'w'}]\n")
    with start(config) as proc:
        proc.wait_for("w: serving, a stop would leave 3.00 s")  # STOP_WAIT_TIME less STOP_RESERVE (1 s)
        code, elapsed = stop(proc)
    out = proc.output
    assert code == 0, out
    assert "w: on_stop_signal SIGTERM" in out
    left = re.search(r"w: stopped by SIGTERM, (\d+\.\d) s left", out)
    assert left is not None, out
    assert 2.5 <= float(left[1]) <= 3.0, out  # the stop's STOP_WAIT_TIME less STOP_RESERVE, counted from the signal
    assert elapsed < 1.0, out

    bad = write("bad.py", "BEANS = [{'core': 'own.Waiter', 'name': 5}, {'core': 'own.Waiter'}]\n")
    with start(bad) as proc:
        code = proc.wait()
    errors = [line for line in proc.output.splitlines() if line.startswith("aiopod: error:")]
    assert code == 2, proc.output
    assert errors == [
        f"aiopod: error: {bad}: BEANS[0]: name: 5 must be a string; add 'name': 'me'",
        f"aiopod: error: {bad}: BEANS[1]: name: None must be a string; add 'name': 'me'",
    ]


def test_with_no_stop_wait_time_an_adapter_has_no_deadline(write: Write) -> None:
    write("own.py", OWN_ADAPTER.replace(":.2f}", "}").replace(":.1f}", "}"))
    config = write("config.py", "STOP_WAIT_TIME = None\nBEANS = [{'core': 'own.Waiter', 'name': 'w'}]\n")
    with start(config) as proc:
        proc.wait_for("w: serving, a stop would leave None s")
        code, _ = stop(proc)
    assert code == 0, proc.output
    assert "w: stopped by SIGTERM, None s left" in proc.output


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.1", False),
        ("example.org", False),
        (None, False),
        (5, False),
    ],
)
def test_is_loopback(host: object, loopback: bool) -> None:
    assert _net.is_loopback(host) is loopback


@pytest.mark.parametrize(("value", "port"), [(0, 0), (8080, 8080), ("8080", 8080), (" 80 ", 80), (65535, 65535)])
def test_as_port_accepts_numbers_and_digit_strings(value: object, port: int) -> None:
    assert _net.as_port(value) == port


@pytest.mark.parametrize("value", [-1, 65536, "http", "", True, 80.0, None])
def test_as_port_refuses_the_rest_saying_what_a_port_is(value: object) -> None:
    with pytest.raises(ValueError, match="is not a port: give a number from 0 to 65535"):
        _net.as_port(value)
