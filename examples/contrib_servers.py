"""Beans built on the contrib scaffolds, used by the ``contrib_*.py`` configs beside this file."""

import asyncio

from aiopod.contrib import fromstdin, pcflow, simple, tcp_server


class Clock(simple.Server):
    """simple.Server: startup, a run that watches ``stopping``, on_stop, cleanup."""

    def startup(self, interval=1.0, **kwargs):
        self.ticks = 0
        print("clock: startup", flush=True)

    async def run(self, interval=1.0, **kwargs):
        while not self.stopping:
            self.ticks += 1
            print(f"clock: tick {self.ticks}", flush=True)
            await asyncio.sleep(interval)

    def on_stop(self, signal, **kwargs):
        print(f"clock: on_stop ({signal})", flush=True)
        super().on_stop(**kwargs)

    async def cleanup(self, **kwargs):
        print(f"clock: cleanup after {self.ticks} ticks", flush=True)


class Numbers(pcflow.Server):
    """pcflow.Server: produce 0, 1, 2... until stopped (or ``count``), consume each one slowly."""

    async def produce(self, count=None, delay=0.01, **kwargs):
        n = 0
        while not self.stopping and (count is None or n < count):
            await asyncio.sleep(delay)
            print(f"produced {n}", flush=True)
            yield n
            n += 1

    async def consume(self, obj, fail_every=0, **kwargs):
        await asyncio.sleep(0.05)
        if fail_every and obj % fail_every == 0:
            raise ValueError(f"{obj} is a multiple of {fail_every}")
        print(f"consumed {obj}", flush=True)

    def cleanup(self, **kwargs):
        counts = f"produced {self.produced} consumed {self.consumed} failed {self.failed}"
        print(f"flow: {counts} unconsumed {self.unconsumed}", flush=True)


class Lines(fromstdin.Server):
    """fromstdin.Server: one line of standard input at a time."""

    async def consume(self, line, **kwargs):
        print(f"line: {line.rstrip()}", flush=True)

    def cleanup(self, **kwargs):
        print(f"stdin: {self.consumed} lines", flush=True)


class EchoServer(tcp_server.Server):
    """tcp_server.Server: send every line back, upper-cased."""

    async def on_start(self):
        print(f"echo server listening on port {self.config.port}", flush=True)

    async def on_connect(self, reader, writer):
        while line := await reader.readline():
            writer.write(line.upper())
            await writer.drain()

    def on_signal(self, sig):
        print(f"echo server got {sig}", flush=True)

    def on_cleanup(self):
        print("echo server cleaned up", flush=True)


class EchoProtocol(asyncio.Protocol):
    """An asyncio.Protocol for the tcp server: it sees the tcp_server.Server as ``self.server``."""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(f"{self.server.config.port}: ".encode() + data)
