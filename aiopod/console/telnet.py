"""The console over telnet: each session a ``PodRepl`` on a non-blocking transport.

prompt_toolkit's own ``TelnetServer`` writes to a blocking socket on the loop thread (one
client that stops reading freezes every bean) and waits for ever for the handshake.
This server reuses its telnet parser and ptpython's REPL, but owns the transport: output
goes through ``transport.write`` with a bounded buffer, handshakes and logins time out,
and nothing is evaluated before a client has negotiated a terminal (and logged in).
"""

from __future__ import annotations

import asyncio
import builtins
import ipaddress
import logging
from collections.abc import Mapping
from typing import Any, TextIO, cast

from prompt_toolkit.application.current import create_app_session
from prompt_toolkit.contrib.telnet.protocol import (
    DO,
    ECHO,
    IAC,
    IP,
    LINEMODE,
    MODE,
    NAWS,
    SB,
    SE,
    SEND,
    SUPPRESS_GO_AHEAD,
    TTYPE,
    WILL,
    TelnetProtocolParser,
)
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output.vt100 import Vt100_Output

from ..pod import BeanContext, BindError, ConfigError
from ._door import LoginLimiter, LogThrottle, PasswordCheck, PendingPool
from ._remote import disarm, forget_filter_caches, share_code_styles
from .namespace import HELPERS
from .repl import PodRepl

logger = logging.getLogger("aiopod.telnet")

HANDSHAKE = (
    IAC + DO + LINEMODE
    + IAC + WILL + SUPPRESS_GO_AHEAD
    + IAC + SB + LINEMODE + MODE + b"\x00" + IAC + SE
    + IAC + WILL + ECHO
    + IAC + DO + NAWS
    + IAC + DO + TTYPE
    + IAC + SB + TTYPE + SEND + IAC + SE
)  # fmt: skip
#: First bytes that mean a browser or HTTP client, not a person (browsers can POST to localhost).
HTTP_STARTS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"OPTIONS ", b"DELETE ", b"PATCH ", b"CONNECT ", b"Host:")
#: Bytes a client may send before it has a session: enough for any telnet negotiation and password.
PRE_SESSION_LIMIT = 4096
#: Connections allowed to be negotiating or logging in at once, beside the sessions; a
#: newcomer evicts the oldest of them (of its own host first) rather than being refused.
MAX_PENDING = 64
MAX_PENDING_PER_HOST = 16
BANNER = "aiopod console on a running pod (exit() or Ctrl-D leaves, the pod runs on). Helpers:\n"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Parser(TelnetProtocolParser):
    """prompt_toolkit's telnet parser, collecting data per chunk instead of per byte."""

    def __init__(self, session: TelnetSession) -> None:
        self.session = session
        self.collected = bytearray()
        super().__init__(self.collected.extend, session.size_received, session.ttype_received)

    def received_data(self, data: bytes) -> None:
        self.collected += data

    def command_received(self, command: bytes, data: bytes) -> None:
        if command == IP:  # the client's Ctrl-C in line mode
            self.session.interrupt()
        elif command == b"\xfc" and data == TTYPE:  # WONT TTYPE: assume a plain terminal
            self.session.ttype_received("vt100")


class _TransportStdout:
    """A file-like stdout for ``Vt100_Output`` that never blocks: it writes to the transport.

    When the client does not read and the buffer passes ``limit`` bytes, the session is dropped.
    """

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, session: TelnetSession, limit: int) -> None:
        self.session = session
        self.limit = limit

    def write(self, data: str) -> int:
        transport = self.session.writer.transport
        if transport.is_closing():
            return len(data)
        transport.write(data.replace("\n", "\r\n").encode(self.encoding, self.errors))
        if transport.get_write_buffer_size() > self.limit:
            self.session.drop(f"it stopped reading ({transport.get_write_buffer_size()} bytes unsent)")
        return len(data)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        raise OSError("a telnet session has no file descriptor")


class TelnetSession:
    """One telnet connection: handshake, optional password, then a console."""

    def __init__(self, server: TelnetConsole, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.host = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.size = Size(rows=24, columns=80)
        self.ttype: str | None = None
        self.repl: PodRepl | None = None
        self.task: asyncio.Task[Any] | None = None
        self.stdout = _TransportStdout(self, server.output_limit)
        self.pipe: PipeInput | None = None
        self._negotiated = asyncio.Event()
        self._input = asyncio.Event()  # pre-session bytes arrived
        self._pending = bytearray()  # bytes received before the console started
        self._parser = _Parser(self)
        self._received = 0
        self._idle: asyncio.TimerHandle | None = None
        self._closed = False

    # -- parser callbacks -------------------------------------------------------------

    def size_received(self, rows: int, columns: int) -> None:
        self.size = Size(rows=max(rows, 1), columns=max(columns, 1))
        app = self.repl.app if self.repl is not None else None
        if app is not None and app.is_running:
            app._on_resize()

    def ttype_received(self, ttype: str) -> None:
        if self.ttype is None:
            self.ttype = ttype or "vt100"
            self._negotiated.set()
            self.server.pending.negotiated(self)

    def interrupt(self) -> None:
        if self.repl is not None:
            self.repl.interrupt()

    # -- the connection ---------------------------------------------------------------

    async def run(self) -> None:
        self.writer.write(HANDSHAKE)
        pump = asyncio.create_task(self._pump())
        try:
            if await self._start():
                await self._console()
        finally:
            pump.cancel()
            await asyncio.wait({pump})
            self.close()

    async def _start(self) -> bool:
        """Handshake and password within ``login_timeout``; False when the connection must end."""
        attempt = None
        try:
            async with asyncio.timeout(self.server.login_timeout):
                await self._negotiated.wait()
                if self.server.check is not None:
                    attempt = await self._read_password()
        except TimeoutError:
            logger.info("telnet: %s did not finish the handshake or login in time; closed", self.peer)
            self.send("\r\naiopod: timed out; goodbye\r\n")
            return False
        if attempt is not None and not await self._login(attempt):
            return False
        if not self.server.admit(self):
            self.send(f"aiopod: too many sessions (max_sessions={self.server.max_sessions}); try again later\r\n")
            logger.warning("telnet: refused %s: max_sessions=%d reached", self.peer, self.server.max_sessions)
            return False
        return True

    async def _read_password(self) -> bytes:
        self.send("Password: ")
        while b"\r" not in self._pending and b"\n" not in self._pending:
            self._input.clear()
            await self._input.wait()
        text = bytes(self._pending).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        line, _, rest = text.partition(b"\n")
        self._pending = bytearray(rest.lstrip(b"\n\x00"))
        return line.strip(b"\x00")

    async def _login(self, attempt: bytes) -> bool:
        """Compare ``attempt`` when this host's turn comes (the limiter books it first)."""
        server = self.server
        wait = server.limiter.reserve(self.host)
        if wait is None:
            server.log.warning("too many login attempts, turned away", f"from {self.peer}")
            retry = server.limiter.retry_after(self.host)
            self.send(f"\r\naiopod: too many login attempts; try again in {retry:.0f} s; goodbye\r\n")
            return False
        if wait:
            # Closing the connection cancels this sleep and the check with it; the turn
            # stays booked, so a guesser that hangs up early gains nothing.
            await asyncio.sleep(wait)
        right = cast(PasswordCheck, server.check).matches(attempt)
        server.limiter.record(self.host, right)
        if right:
            self.send("\r\n")
            return True
        server.log.warning("wrong password", f"from {self.peer}")
        self.send("\r\naiopod: wrong password; goodbye\r\n")
        return False

    async def _console(self) -> None:
        logger.info("telnet: session opened by %s", self.peer)
        output = Vt100_Output(cast(TextIO, self.stdout), lambda: self.size, term=self.ttype, enable_cpr=False)
        with create_pipe_input() as pipe:
            self.pipe = pipe
            if self._pending:
                pipe.send_bytes(bytes(self._pending))
                self._pending.clear()
            with create_app_session(input=pipe, output=output):
                self.repl = PodRepl(self.server.context.pod, input=pipe, output=output)
                self.repl.namespace["print"] = self._print
                output.write_raw(BANNER.replace("\n", "\r\n") + HELPERS.replace("\n", "\r\n") + "\r\n")
                output.flush()
                disarm(self.repl)
                try:
                    await self.repl.run_async()
                finally:
                    self.repl.interrupt()
                    self.repl = None
            self.pipe = None
        logger.info("telnet: session of %s ended", self.peer)

    def _print(self, *args: Any, file: Any = None, **kwargs: Any) -> None:
        """``print()`` in a session writes to that session, not to the server's stdout."""
        builtins.print(*args, file=file if file is not None else self.stdout, **kwargs)

    async def _pump(self) -> None:
        """Read from the client, feed the parser, route the data; EOF ends the session."""
        while True:
            try:
                chunk = await self.reader.read(4096)
            except (ConnectionError, OSError):
                chunk = b""
            if not chunk:
                break
            self._touch()
            if self.pipe is None:
                self._received += len(chunk)
                if self._received == len(chunk) and chunk.lstrip().startswith(HTTP_STARTS):
                    logger.warning("telnet: %s sent an HTTP request; closed without evaluating it", self.peer)
                    break
                if self._received > PRE_SESSION_LIMIT:
                    logger.warning("telnet: %s sent %d bytes before logging in; closed", self.peer, self._received)
                    break
            self._parser.feed(chunk)
            data = bytes(self._parser.collected)
            self._parser.collected.clear()
            if data:
                self._route(data)
        if self.task is not None and not self.task.done():
            self.task.cancel()  # the client went away: cancel its statement and free the session

    def _route(self, data: bytes) -> None:
        if self.pipe is None:
            self._pending += data
            if b"Host:" in self._pending[:PRE_SESSION_LIMIT] and self._pending.startswith(HTTP_STARTS):
                self.drop("it looks like HTTP")
            self._input.set()
            return
        if b"\x03" in data and self.repl is not None and self.repl.interrupt():
            data = data.replace(b"\x03", b"")  # Ctrl-C while a statement runs cancels it
        if data:
            self.pipe.send_bytes(data)

    def _touch(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        timeout = self.server.idle_timeout
        if timeout:
            self._idle = asyncio.get_running_loop().call_later(timeout, self.drop, f"idle for {timeout:g} s")

    def send(self, text: str) -> None:
        if not self.writer.transport.is_closing():
            self.writer.write(text.encode("utf-8", "replace"))

    def goodbye(self, why: str) -> None:
        self.send(f"\r\naiopod: {why}; goodbye\r\n")
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def drop(self, why: str | None) -> None:
        """End this session now, without waiting for the client (``why`` None: not logged)."""
        if self._closed:
            return
        if why is not None:
            logger.warning("telnet: dropping %s: %s", self.peer, why)
        self.writer.transport.abort()
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._idle is not None:
            self._idle.cancel()
        self.writer.close()
        self.server.forget(self)


class TelnetConsole:
    """A bean that serves the console over telnet (kwargs: host, port, password, max_sessions...)."""

    def __init__(self, context: BeanContext) -> None:
        self.context = context
        self.sessions: set[TelnetSession] = set()
        self.pending: PendingPool[TelnetSession] = PendingPool(MAX_PENDING, MAX_PENDING_PER_HOST)
        self.server: asyncio.Server | None = None
        self.check: PasswordCheck | None = None
        #: Password checks and refusals so far (``checked``, ``wrong``, ``refused``).
        self.limiter = LoginLimiter()
        self.log = LogThrottle(logger)
        self.max_sessions = 8
        self.idle_timeout: float | None = None
        self.login_timeout = 10.0
        self.output_limit = 1 << 20

    @classmethod
    def check_kwargs(cls, kwargs: Mapping[str, Any]) -> None:
        """Refuse, before anything starts, a console that anyone on the network could use."""
        host = kwargs.get("host", "127.0.0.1")
        problems = []
        password = kwargs.get("password")
        if not isinstance(host, str):
            problems.append(f"host {host!r} must be a string such as '127.0.0.1'")
        elif not is_loopback(host) and not password:
            problems.append(
                f"telnet host {host!r} is not loopback and no password is set: anyone who can reach it "
                "could run code in this pod; set password=... (or use host='127.0.0.1')"
            )
        if password is not None and not isinstance(password, str):
            problems.append(
                f"password must be a string (or None for no password), got {type(password).__name__}: "
                f"quote it, password='...'"
            )
        port = kwargs.get("port", 8023)
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            problems.append(f"port {port!r} must be a number from 0 to 65535")
        sessions = kwargs.get("max_sessions", 8)
        if not isinstance(sessions, int) or sessions < 1:
            problems.append(f"max_sessions {sessions!r} must be a whole number >= 1")
        if problems:
            raise ConfigError(problems)

    async def __call__(
        self,
        host: str = "127.0.0.1",
        port: int | str = 8023,
        password: str | None = None,
        max_sessions: int = 8,
        idle_timeout: float | None = 3600.0,
        login_timeout: float = 10.0,
        output_limit: int = 1 << 20,
        **kwargs: Any,
    ) -> None:
        self.check_kwargs({"host": host, "port": port, "password": password, "max_sessions": max_sessions})
        self.check = PasswordCheck(password) if password else None
        share_code_styles()
        self.max_sessions = max_sessions
        self.idle_timeout = idle_timeout
        self.login_timeout = login_timeout
        self.output_limit = output_limit
        stopping = asyncio.Event()

        def on_stop(signal: str, **kw: Any) -> None:
            stopping.set()

        for name in ("SIGINT", "SIGTERM"):
            await self.context.add_signal_handler(name, on_stop)
        try:
            self.server = await asyncio.start_server(self._accept, host, int(port))
        except OSError as exc:
            raise BindError(f"telnet console cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        bound = self.server.sockets[0].getsockname()
        logger.info("telnet console listening on %s:%s (telnet %s %s)", bound[0], bound[1], bound[0], bound[1])
        try:
            await stopping.wait()
        finally:
            self.server.close()
            everyone = [*self.sessions, *self.pending.items()]
            for session in everyone:
                session.goodbye("the pod is stopping")
            tasks = [s.task for s in everyone if s.task is not None]
            if tasks:
                await asyncio.wait(tasks, timeout=1.0)
            self.log.flush()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = TelnetSession(self, reader, writer)
        session.task = asyncio.current_task()
        evicted = self.pending.add(session, session.host)
        if evicted is not None:
            self.log.warning("too many connections still logging in; closed the oldest", f"of {evicted.peer}")
            evicted.drop(None)
        try:
            await session.run()
        except asyncio.CancelledError:
            pass  # the session was dropped or the pod stops: the connection is closed below
        finally:
            session.close()

    def admit(self, session: TelnetSession) -> bool:
        self.pending.discard(session)
        if len(self.sessions) >= self.max_sessions:
            return False
        self.sessions.add(session)
        return True

    def forget(self, session: TelnetSession) -> None:
        if session in self.sessions:
            self.sessions.discard(session)
            forget_filter_caches()
        self.pending.discard(session)


__all__ = ["TelnetConsole", "TelnetSession", "is_loopback"]
