"""Row 9: requests/s of uvicorn inside a pod against plain uvicorn, serving the same app.

Both servers run side by side (same app, same loop, h11, no access log), pinned to the
same CPU, and a load client in this process (on a CPU of its own when there are two)
keeps ``CONNECTIONS`` keep-alive connections busy against each of them *at the same
time*. The kernel gives each server half of that CPU, and whatever slows the host slows
both, so the ratio of their requests/s is the ratio of their cost per request. Measured
one after the other instead, the pair ratios on this project's host ranged 0.66-1.41;
at the same time they agree within 2%, and an access log (28% dearer) shows as 1.38x.
The row reports the median of the rounds' ratios pod/plain. Run alone with
``python -m benchmarks.bench_uvicorn [--quick] [--loop asyncio|uvloop|both]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from ._harness import PYTHON, ROOT, BenchmarkError, Row, Settings, aiopod_command, clean_env, free_port

ROUNDS = 5
SECONDS = 2.0
WARMUP = 0.5
CONNECTIONS = 32
GOAL = 0.95  # the pod may cost at most 5% of uvicorn's throughput
APP = "contrib_asgi_app:app"  # examples/contrib_asgi_app.py: "/" answers "hello"
EXAMPLES = ROOT / "examples"
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
_LENGTH = re.compile(rb"content-length: *(\d+)", re.IGNORECASE)
CONFIG = """
BEANS = [{{
    "core": "aiopod.contrib.uvicorn.UvicornAdapter",
    "app": {app!r},
    "port": {port},
    "http": "h11",
    "access_log": False,
    "log_level": "warning",
}}]
"""


class _Client(asyncio.Protocol):
    """One keep-alive connection that sends the next request as soon as a response is complete."""

    def __init__(self, counts: list[int], running: Callable[[], bool]) -> None:
        self.counts = counts
        self.running = running
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(REQUEST)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            match = _LENGTH.search(self.buffer, 0, end)
            if match is None:
                raise BenchmarkError(f"response without content-length: {self.buffer[:200]!r}")
            size = end + 4 + int(match[1])
            if len(self.buffer) < size:
                return
            if not self.buffer.startswith(b"HTTP/1.1 200"):
                raise BenchmarkError(f"unexpected response: {self.buffer[:100]!r}")
            self.buffer = self.buffer[size:]
            self.counts[0] += 1
            if not self.running():
                self.transport.close()
                return
            self.transport.write(REQUEST)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def _load(port: int, seconds: float, connections: int) -> float:
    """Requests/s over ``seconds`` (after a warm-up) with ``connections`` keep-alive clients."""
    loop = asyncio.get_running_loop()
    counts = [0]
    stop_at = loop.time() + WARMUP + seconds
    clients = []
    for _ in range(connections):
        _, client = await loop.create_connection(
            lambda: _Client(counts, lambda: loop.time() < stop_at), "127.0.0.1", port
        )
        clients.append(client)
    await asyncio.sleep(WARMUP)
    start_count, started = counts[0], loop.time()
    await asyncio.sleep(max(0.0, stop_at - loop.time()))
    done_count, ended = counts[0], loop.time()
    await asyncio.wait([c.closed for c in clients], timeout=5)
    if done_count == start_count:
        raise BenchmarkError(f"no response from port {port} in {seconds:g} s")
    return (done_count - start_count) / (ended - started)


def _round(ports: tuple[int, int], seconds: float, loop: str) -> tuple[float, float]:
    """Requests/s of the two servers on ``ports``, loaded at the same time for ``seconds``."""

    async def both() -> tuple[float, float]:
        a, b = await asyncio.gather(*(_load(port, seconds, CONNECTIONS) for port in ports))
        return a, b

    if CLIENT_CPUS:
        os.sched_setaffinity(0, CLIENT_CPUS)
    if loop == "uvloop":
        import uvloop

        return uvloop.run(both())
    return asyncio.run(both())


def _wait_until_serving(proc: subprocess.Popen[bytes], port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchmarkError(f"{proc.args!r} exited {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                if response.read() == b"hello":
                    return
        except OSError:
            time.sleep(0.05)  # polling for the port to open: there is no line to wait for
    raise BenchmarkError(f"{proc.args!r} did not serve on port {port} within {timeout:g} s")


@contextmanager
def _server(command: list[str], port: int, ok: tuple[int, ...] = (0,)) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(command, cwd=EXAMPLES, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if SERVER_CPUS:
            os.sched_setaffinity(proc.pid, SERVER_CPUS)
        _wait_until_serving(proc, port)
        yield proc
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        if proc.returncode not in ok:
            raise BenchmarkError(f"{command[:3]!r} exited {proc.returncode} after SIGTERM: {err.decode()[-300:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _split_cpus() -> tuple[set[int], set[int]]:
    """(client CPUs, server CPUs): apart when there are two or more, so neither steals the other's."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return set(), set()
    return {cpus[0]}, set(cpus[1:])


CLIENT_CPUS, SERVER_CPUS = _split_cpus()


def compare(settings: Settings, loop: str = "asyncio") -> tuple[list[float], list[float]]:
    """Requests/s of (pod, plain uvicorn) for each round, both loaded at the same time."""
    seconds = 1.0 if settings.quick else SECONDS
    pod_port, plain_port = free_port(), free_port()
    plain = [PYTHON, "-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(plain_port)]
    plain += ["--loop", loop, "--http", "h11", "--no-access-log", "--log-level", "warning"]
    with tempfile.TemporaryDirectory(prefix="aiopod-bench-") as tmp:
        config = Path(tmp) / "pod.py"
        config.write_text(CONFIG.format(app=APP, port=pod_port))
        pod = [*aiopod_command(), "run", "-c", str(config), "--loop-type", loop, "-l", "WARNING"]
        with _server(pod, pod_port), _server(plain, plain_port, ok=(0, -signal.SIGTERM)):
            # plain uvicorn re-raises the SIGTERM it caught once it has shut down, so it dies of it
            _round((pod_port, plain_port), WARMUP, loop)  # unrecorded: first connections, caches
            rounds = [_round((pod_port, plain_port), seconds, loop) for _ in range(settings.pairs(ROUNDS))]
    return [pod for pod, _ in rounds], [plain for _, plain in rounds]


def run(settings: Settings, loops: tuple[str, ...] = ("asyncio", "uvloop")) -> list[Row]:
    rows = []
    for loop in loops:
        pod, plain = compare(settings, loop)
        ratios = [a / b for a, b in zip(pod, plain, strict=True)]
        ratio = statistics.median(ratios)
        detail = (
            f"pod {statistics.median(pod):,.0f} req/s vs uvicorn {statistics.median(plain):,.0f} req/s; "
            f"ratios {min(ratios):.2f}-{max(ratios):.2f} (n={len(ratios)}, both loaded at once, "
            f"{CONNECTIONS} connections each)"
        )
        name = f"uvicorn in a pod vs plain uvicorn, req/s ({loop}, h11)"
        rows.append(Row(9, name, f"{ratio:.2f}x", f">= {GOAL:g}x", ratio >= GOAL, detail))
    return rows


def main(argv: list[str] | None = None) -> int:
    from ._harness import table

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_uvicorn", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer and shorter pairs: a smoke run")
    parser.add_argument("--loop", choices=["asyncio", "uvloop", "both"], default="both")
    args = parser.parse_args(argv)
    loops = ("asyncio", "uvloop") if args.loop == "both" else (args.loop,)
    print(table(run(Settings(quick=args.quick), loops)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
