"""The console socket: remote sessions served from a thread of their own, never the pod's loop.

Every pod serves its console on a unix socket (``aiopod attach`` is the client). Socket
I/O, handshakes, completions and session bookkeeping run in the ``aiopod-console-socket``
thread on a loop of its own, as manhole serves its socket from its own thread: a session
answers while a bean blocks the pod's loop. Only the statements a session sends run on
the pod's loop (through the evaluator). Stdlib only: ``aiopod run`` pays no ptpython.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, ClassVar

from ..pod import Pod
from . import protocol
from .sockets import Listener, listen, peer_allowed, peer_credentials

logger = logging.getLogger("aiopod.console")

#: A client gets this long to say hello.
HELLO_TIMEOUT = 10.0
#: Output waiting for a client that does not read; past it the session is dropped.
OUTPUT_LIMIT = 4 << 20


class SocketSession:
    """One attached client: who it is (SO_PEERCRED), its namespace, its output on the way to it."""

    def __init__(self, server: ConsoleServer, number: int, pid: int, uid: int, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.number = number
        self.pid = pid
        self.uid = uid
        self.since = time.time()
        self.writer = writer
        self.namespace: dict[str, Any] = {}
        self.closed = False
        self._out: list[tuple[str, str]] = []
        self._out_size = 0
        self._lock = threading.Lock()
        self._scheduled = False

    @property
    def peer(self) -> str:
        return f"pid {self.pid} uid {self.uid}"

    def describe(self) -> str:
        return f"console session #{self.number} ({self.peer})"

    # Called from any thread (the pod's loop while a statement or its tasks print).
    def write(self, data: str, stream: str = "stdout") -> int:
        """Queue output for the client; never blocks the caller."""
        if self.closed or not data:
            return len(data)
        with self._lock:
            if self._out_size + len(data) > OUTPUT_LIMIT:
                self._out_size = OUTPUT_LIMIT + 1  # too much unread: the console thread drops us
            else:
                self._out.append((stream, data))
                self._out_size += len(data)
            if self._scheduled:
                return len(data)
            self._scheduled = True
        with contextlib.suppress(RuntimeError):  # the console thread has ended
            self.server.loop.call_soon_threadsafe(self.flush)
        return len(data)

    # Console thread only, below.
    def flush(self) -> None:
        with self._lock:
            chunks, self._out = self._out, []
            over = self._out_size > OUTPUT_LIMIT or self._transport_full()
            self._out_size = 0
            self._scheduled = False
        if self.closed:
            return
        if over:
            self.server.drop(self, "the client stopped reading its output")
            return
        for stream, data in _merge(chunks):
            for start in range(0, len(data), protocol.OUTPUT_CHUNK):
                self.send({"type": "output", "stream": stream, "data": data[start : start + protocol.OUTPUT_CHUNK]})

    def _transport_full(self) -> bool:
        transport = self.writer.transport
        return transport.get_write_buffer_size() > OUTPUT_LIMIT

    def send(self, message: dict[str, Any]) -> None:
        if self.closed or self.writer.is_closing():
            return
        self.writer.write(protocol.encode(message))


def _merge(chunks: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Consecutive writes to one stream as one piece (a print is several writes)."""
    merged: list[tuple[str, list[str]]] = []
    for stream, data in chunks:
        if merged and merged[-1][0] == stream:
            merged[-1][1].append(data)
        else:
            merged.append((stream, [data]))
    return [(stream, "".join(parts)) for stream, parts in merged]


class ConsoleServer:
    """Serves a pod's console on a unix socket from the ``aiopod-console-socket`` thread."""

    #: The frames a client may send in a session (each handled by ``on_<type>``).
    FRAMES: ClassVar[frozenset[str]] = frozenset({"complete", "stack"})

    def __init__(self, pod: Pod, path: Path, *, name: str) -> None:
        self.pod = pod
        self.path = path
        self.name = name
        self.started_at = time.time()
        self.sessions: dict[int, SocketSession] = {}
        self._numbers = itertools.count(1)
        self._listener: Listener | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._pod_thread: int | None = None
        self.pod_loop: asyncio.AbstractEventLoop | None = None
        self._pod_running = asyncio.Event()  # set in the console thread (an Event binds no loop until used)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.farewell = "the pod stopped"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the console socket is not being served")
        return self._loop

    def start(self) -> None:
        """Bind the socket (SocketInUse if a live pod serves it) and start serving it."""
        self._listener = listen(self.path)
        self.pod.on_start(self._pod_started)
        self.pod.on_stop(self._pod_stopping)
        self._thread = threading.Thread(target=self._serve_forever, name="aiopod-console-socket", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)
        logger.debug("console socket %s (aiopod attach %d)", self.path, os.getpid())

    def close(self, timeout: float = 2.0) -> None:
        """Say goodbye to every session, stop the thread, remove the socket."""
        if self._loop is not None and self._stopped is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(timeout)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> ConsoleServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pod_started(self) -> None:
        """On the pod's loop, once its beans have started: statements may run from now on."""
        self._pod_thread = threading.get_ident()
        self.pod_loop = asyncio.get_running_loop()
        with contextlib.suppress(RuntimeError):  # the console thread has ended
            self.loop.call_soon_threadsafe(self._pod_running.set)

    async def pod_running(self) -> asyncio.AbstractEventLoop:
        """The pod's loop, once it runs (a client can connect while the beans still start)."""
        await self._pod_running.wait()
        assert self.pod_loop is not None
        return self.pod_loop

    def _pod_stopping(self, signal: str) -> None:
        self.farewell = f"the pod is stopping ({signal})"

    def info(self) -> dict[str, Any]:
        """What ``aiopod ps`` shows; read from this thread, so a blocked loop still answers."""
        return {
            "type": "info",
            "pid": os.getpid(),
            "name": self.name,
            "started": self.started_at,
            "beans": len(self.pod.beans),
            "sessions": len(self.sessions),
            "socket": str(self.path),
        }

    def loop_stack(self) -> str:
        """Where the pod's loop thread is right now (aiomonitor's ``stacktrace``)."""
        ident = self._pod_thread or threading.main_thread().ident
        frame = sys._current_frames().get(ident) if ident is not None else None
        if frame is None:
            return "the pod's loop thread is not running"
        health = self.pod.health()
        state = f" (blocked for {health.blocked_for:.1f}s)" if health.blocked_for else ""
        return f"the pod's loop thread is here{state}:\n" + "".join(traceback.format_stack(frame))

    # The console thread, from here on.
    def _serve_forever(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        assert self._listener is not None
        self._stopped = asyncio.Event()
        server = await asyncio.start_unix_server(self._connection, sock=self._listener.sock, limit=protocol.MAX_FRAME)
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            server.close()
            for session in list(self.sessions.values()):
                session.flush()
                session.send({"type": "bye", "message": self.farewell})
                self.drop(session, self.farewell)
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=1.0)

    def drop(self, session: SocketSession, reason: str) -> None:
        """End a session from the pod's side."""
        if session.closed:
            return
        session.closed = True
        session.writer.close()
        self._ended(session, reason)

    def _ended(self, session: SocketSession, reason: str) -> None:
        if self.sessions.pop(session.number, None) is None:
            return
        session.closed = True
        took = time.time() - session.since
        logger.info("%s ended after %.1fs: %s", session.describe(), took, reason)
        self.closed_session(session)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        pid, uid, _ = peer_credentials(sock)
        if not peer_allowed(uid):
            logger.warning(
                "console socket: refused pid %d uid %d (only uid %d and root may attach)", pid, uid, os.getuid()
            )
            writer.write(protocol.encode({"type": "error", "message": f"uid {uid} may not attach to this pod"}))
            return
        try:
            message = await asyncio.wait_for(protocol.read_frame(reader), HELLO_TIMEOUT)
            if message is None:
                return  # a probe (is the socket live?) that said nothing
            want = protocol.check_hello(message)
        except (protocol.ProtocolError, TimeoutError) as exc:
            reason = str(exc) or f"no hello within {HELLO_TIMEOUT:g}s"
            logger.warning("console socket: closed a connection from pid %d uid %d: %s", pid, uid, reason)
            writer.write(protocol.encode({"type": "error", "message": reason}))
            return
        if want == "info":
            writer.write(protocol.encode(self.info()))
            await writer.drain()
            return
        session = SocketSession(self, next(self._numbers), pid, uid, writer)
        self.sessions[session.number] = session
        logger.info("%s opened", session.describe())
        reason = "the client left"
        try:
            session.send({**self.info(), "type": "welcome", "session": session.number})
            self.opened(session)
            reason = await self._session(session, reader)
        except protocol.ProtocolError as exc:
            reason = f"protocol error: {exc}"
            session.send({"type": "error", "message": str(exc)})
        except (ConnectionError, OSError) as exc:
            reason = f"connection lost: {exc}"
        finally:
            session.flush()
            self._ended(session, reason)

    async def _session(self, session: SocketSession, reader: asyncio.StreamReader) -> str:
        while True:
            message = await protocol.read_frame(reader)
            if message is None:
                return "the client disconnected"
            kind = message["type"]
            if kind == "bye":
                return "the client left"
            if kind not in self.FRAMES:
                raise protocol.ProtocolError(f"unknown frame type {kind!r}")
            getattr(self, f"on_{kind}")(session, message)

    def opened(self, session: SocketSession) -> None:
        """A session was accepted (a subclass builds its namespace here)."""

    def closed_session(self, session: SocketSession) -> None:
        """A session ended (a subclass stops its running statement here)."""

    def on_complete(self, session: SocketSession, message: dict[str, Any]) -> None:
        text = message.get("text")
        if not isinstance(text, str):
            raise protocol.ProtocolError("a 'complete' frame needs a 'text' string")
        from ._completions import complete  # at the first Tab: a pod nobody attaches to never imports it

        labels = {b.label for b in list(self.pod.beans) if b.label is not None}
        try:
            items = complete(text, session.namespace, labels)
        except RuntimeError:  # the namespace changed size under us: the next key press retries
            items = []
        session.send({"type": "completions", "id": message.get("id"), "items": items})

    def on_stack(self, session: SocketSession, message: dict[str, Any]) -> None:
        session.send({"type": "stack", "id": message.get("id"), "text": self.loop_stack()})
