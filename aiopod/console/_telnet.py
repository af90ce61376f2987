"""One telnet connection on the telnet console's thread: handshake, login, then a console.

prompt_toolkit's own ``TelnetServer`` writes to a blocking socket (one client that stops
reading freezes its loop) and waits for ever for the handshake. This reuses its telnet
parser, but owns the transport: output goes through ``transport.write`` with a bounded
buffer, handshakes and logins time out, and nothing is evaluated before a client has
negotiated a terminal (and logged in).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, TextIO, cast

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

from ._door import PasswordCheck
from ._sweeper import take_apart
from ._telnet_repl import SessionOutput, TelnetRepl
from .evaluator import Session
from .namespace import Text, build_namespace, careful_stop, remote_helpers

if TYPE_CHECKING:
    from .telnet import TelnetConsole

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
BANNER = "aiopod console on a running pod (exit() or Ctrl-D leaves, the pod runs on). Helpers:\n"
#: What ``h()`` says in a telnet session: leaving and stopping mean different things here.
TELNET_HELPERS = remote_helpers("peer, since, running statement")


def telnet_help() -> Text:
    """What this session's helpers do, and what exit() and stop() mean here."""
    return Text(TELNET_HELPERS + "\nCtrl-C interrupts the running statement.")


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
        self.repl: TelnetRepl | None = None
        self.evaluation: Session | None = None
        self.task: asyncio.Task[Any] | None = None
        self.stdout = _TransportStdout(self, server.output_limit)
        self.pipe: PipeInput | None = None
        self._ended: TelnetRepl | None = None  # the REPL whose console ended, until taken apart
        self.since = time.time()
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

    def interrupt(self) -> bool:
        """Interrupt the running statement (Ctrl-C); False when none runs."""
        return self.evaluation is not None and self.evaluation.interrupt()

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
        pod = self.server.context.pod
        output = Vt100_Output(cast(TextIO, self.stdout), lambda: self.size, term=self.ttype, enable_cpr=False)
        namespace = build_namespace(pod)
        loop = asyncio.get_running_loop()
        out = SessionOutput(loop, lambda text: self.show(text), self.server.output_limit)

        async def asked(question: str) -> bool:  # on the telnet loop, below the statement's output
            out.flush()
            return self.repl is not None and await self.repl.confirm(question)

        async def ask(question: str) -> bool:  # on the pod's loop (stop()); Ctrl-C cancels both
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(asked(question), loop))

        def sessions() -> Text:
            """Who is attached to this pod's telnet console."""
            return self.server.table(self)

        others = self.server.sessions
        stop = careful_stop(pod, ask, name=None, others=lambda: len(others) - 1)
        namespace.update(h=telnet_help, stop=stop, sessions=sessions)
        out.overflow = lambda: self.drop(f"it stopped reading (over {self.server.output_limit} characters unsent)")
        self.evaluation = self.server.evaluator.session(namespace, out.write)
        try:
            with create_pipe_input() as pipe, create_app_session(input=pipe, output=output):
                self.pipe = pipe
                if self._pending:
                    pipe.send_bytes(bytes(self._pending))
                    self._pending.clear()
                output.write_raw(BANNER + TELNET_HELPERS + "\n")
                output.flush()
                self.repl = TelnetRepl(pod, namespace, self.evaluation, input=pipe, output=output)
                await self.repl.run_session(out.flush)
        finally:
            if self.evaluation.busy:  # the client left mid-statement: stop it, as Ctrl-C would
                self.evaluation.interrupt()
            self.evaluation.close()
            self._ended, self.repl = self.repl, None
            self.pipe = None
        logger.info("telnet: session of %s ended", self.peer)

    def take_apart(self) -> None:
        """Let the ended console's REPL go to pieces, for reference counting to free (``aiopod.console._sweeper``)."""
        repl, self._ended = self._ended, None
        if repl is not None:
            take_apart(repl.app, repl)

    @property
    def running(self) -> str | None:
        """The statement this session runs, if any."""
        return self.repl.running if self.repl is not None else None

    def show(self, text: str) -> None:
        """Output of this session's statements (and of the tasks they started)."""
        if self.repl is not None:
            self.repl.show(text)
        else:
            self.stdout.write(text)

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
        if b"\x03" in data and self.interrupt():
            data = data.replace(b"\x03", b"")  # Ctrl-C while a statement runs interrupts it
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


__all__ = ["TelnetSession"]
