"""The console over telnet, served from a thread of its own: the pod's loop only runs statements.

Sockets, telnet negotiation, logins, and each session's ptpython (keys, drawing,
completion) run in the ``aiopod-telnet`` thread on a loop of its own, so typing and
opening sessions never stall a bean; each statement runs on the pod's loop through the
evaluator, and its output comes back to its own session (``_telnet_repl``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Mapping, MutableMapping
from typing import Any, cast

from ..contrib._net import DEFAULT_HOST, as_port, host_problems, is_loopback, listen_error, port_problems
from ..pod import BeanContext, ConfigError
from . import _layout, _screen
from ._door import LoginLimiter, LogThrottle, PasswordCheck, PendingPool
from ._remote import forget_filter_caches, share_code_styles, share_default_bindings
from ._sweeper import Sweeper, freeze_base
from ._switch import breathing, short_switch_interval
from ._telnet import TelnetSession
from ._telnet_repl import build_offscreen
from .evaluator import Evaluator
from .namespace import Text, format_uptime, one_line, table

logger = logging.getLogger("aiopod.telnet")

#: Connections allowed to be negotiating or logging in at once, beside the sessions; a
#: newcomer evicts the oldest of them (of its own host first) rather than being refused.
MAX_PENDING = 64
MAX_PENDING_PER_HOST = 16
#: Seconds the pod waits for the telnet thread to say goodbye to its sessions at stop.
STOP_GRACE = 1.0


class TelnetConsole:
    """A bean that serves the console over telnet (kwargs: host, port, password, max_sessions...)."""

    def __init__(self, context: BeanContext) -> None:
        self.context = context
        self.sessions: set[TelnetSession] = set()
        self.pending: PendingPool[TelnetSession] = PendingPool(MAX_PENDING, MAX_PENDING_PER_HOST)
        self.check: PasswordCheck | None = None
        #: Password checks and refusals so far (``checked``, ``wrong``, ``refused``).
        self.limiter = LoginLimiter()
        self.log = LogThrottle(logger)
        self.max_sessions = 8
        self.idle_timeout: float | None = None
        self.login_timeout = 10.0
        self.output_limit = 1 << 20
        self.evaluator: Evaluator
        self.loop: asyncio.AbstractEventLoop | None = None  # the telnet thread's
        self._stopping: asyncio.Event | None = None
        self._sweeper: Sweeper | None = None

    @classmethod
    def check_kwargs(cls, kwargs: Mapping[str, Any]) -> None:
        """Refuse, before anything starts, a console that anyone on the network could use.

        A password given as a string is replaced, in the bean's own kwargs (the dict the pod
        checks is the one the bean keeps), by its ``PasswordCheck``: nothing a bean or a
        console user can read (``bean('telnet').kwargs``) holds the password (issue 15, item 5).
        """
        problems = host_problems(kwargs) + port_problems(kwargs, ["port"])
        host = kwargs.get("host", DEFAULT_HOST)
        password = kwargs.get("password")
        if not problems and not is_loopback(host) and not password:
            problems.append(
                f"telnet host {host!r} is not loopback and no password is set: anyone who can reach it "
                "could run code in this pod; set password=... (or use host='127.0.0.1')"
            )
        if password is not None and not isinstance(password, str | PasswordCheck):
            problems.append(
                f"password must be a string (or None for no password), got {type(password).__name__}: "
                f"quote it, password='...'"
            )
        sessions = kwargs.get("max_sessions", 8)
        if not isinstance(sessions, int) or isinstance(sessions, bool) or sessions < 1:
            problems.append(f"max_sessions {sessions!r} must be a whole number >= 1")
        if problems:
            raise ConfigError(problems)
        if isinstance(password, str) and password and isinstance(kwargs, MutableMapping):
            kwargs["password"] = PasswordCheck(password)

    async def __call__(
        self,
        host: str = "127.0.0.1",
        port: int | str = 8023,
        password: str | PasswordCheck | None = None,
        max_sessions: int = 8,
        idle_timeout: float | None = 3600.0,
        login_timeout: float = 10.0,
        output_limit: int = 1 << 20,
        **kwargs: Any,
    ) -> None:
        self.check_kwargs({"host": host, "port": port, "password": password, "max_sessions": max_sessions})
        self.check = password if isinstance(password, PasswordCheck) else PasswordCheck(password) if password else None
        if self.check is not None:
            self._forget_password(self.check)
        share_code_styles()
        share_default_bindings()
        self.max_sessions = max_sessions
        self.idle_timeout = idle_timeout
        self.login_timeout = login_timeout
        self.output_limit = output_limit
        self.evaluator = Evaluator.for_pod(self.context.pod)  # on the pod's loop, once per pod
        stopping = asyncio.Event()

        def on_stop(signal: str, **kw: Any) -> None:
            stopping.set()

        for name in ("SIGINT", "SIGTERM"):
            await self.context.add_signal_handler(name, on_stop)
        listening: concurrent.futures.Future[tuple[Any, ...]] = concurrent.futures.Future()
        ended: concurrent.futures.Future[None] = concurrent.futures.Future()
        thread = threading.Thread(
            target=self._thread, args=(host, as_port(port), listening, ended), name="aiopod-telnet", daemon=True
        )
        thread.start()
        try:
            bound = await asyncio.wrap_future(listening)
            logger.info("telnet console listening on %s:%s (telnet %s %s)", bound[0], bound[1], bound[0], bound[1])
            await stopping.wait()
        finally:
            if self.loop is not None and self._stopping is not None:
                with contextlib.suppress(RuntimeError):  # the thread's loop has ended already
                    self.loop.call_soon_threadsafe(self._stopping.set)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.wrap_future(ended), STOP_GRACE + 1.0)

    def _forget_password(self, check: PasswordCheck) -> None:
        """The config's ``BEANS`` keeps the entries as the file wrote them: their password becomes the digest too."""
        for entry in self.context.config.get("BEANS") or ():
            if isinstance(entry, MutableMapping):
                written = entry.get("password")
                if isinstance(written, str) and check.matches(written.encode()):
                    entry["password"] = check

    # The telnet thread, from here on.
    def _thread(
        self,
        host: str,
        port: int,
        listening: concurrent.futures.Future[tuple[Any, ...]],
        ended: concurrent.futures.Future[None],
    ) -> None:
        loop = self.loop = asyncio.new_event_loop()
        try:
            # The local console's cheaper redraws (the same bytes: tests/console/test_layout.py and
            # test_screen.py), and its short stretches of the GIL between their steps (_switch.py).
            _layout.install()
            _screen.install()
            with short_switch_interval(), breathing():  # the GIL back within 1 ms, the CPU every 0.5 ms
                loop.run_until_complete(self._serve(host, port, listening))
        except BaseException as exc:
            if not listening.done():
                listening.set_exception(exc)  # raised by the bean, on the pod's loop
            else:
                logger.error("telnet console thread failed", exc_info=exc)
        finally:
            loop.close()
            ended.set_result(None)

    async def _serve(self, host: str, port: int, listening: concurrent.futures.Future[tuple[Any, ...]]) -> None:
        self._stopping = asyncio.Event()
        self._sweeper = Sweeper(asyncio.get_running_loop())
        freeze_base(lambda: build_offscreen(self.context.pod, self.evaluator))  # aiopod.console._sweeper
        try:
            server = await asyncio.start_server(self._accept, host, port)
        except OSError as exc:
            raise listen_error("telnet console", host, port, exc) from None
        listening.set_result(server.sockets[0].getsockname())
        tasks: set[asyncio.Task[Any]] = set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            everyone = [*self.sessions, *self.pending.items()]
            for session in everyone:
                session.goodbye("the pod is stopping")
                if session.task is not None:
                    tasks.add(session.task)
            if tasks:
                await asyncio.wait(tasks, timeout=STOP_GRACE)
            self._sweeper.cancel()
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
        except asyncio.CancelledError as cancelled:  # the session was dropped or the pod stops: closed below
            cancelled.__traceback__ = None  # its frames hold the finished session (aiopod.console._sweeper)
        finally:
            session.close()
            if session.evaluation is not None:  # it had a console, now garbage (aiopod.console._sweeper)
                cast(Sweeper, self._sweeper).after(writer.wait_closed(), session.take_apart)

    def admit(self, session: TelnetSession) -> bool:
        self.pending.discard(session)
        if len(self.sessions) >= self.max_sessions:
            return False
        self.sessions.add(session)
        return True

    def table(self, you: TelnetSession) -> Text:
        """The sessions attached, oldest first (``sessions()``; read from the pod's loop)."""
        rows = [
            [
                session.peer + (" (you)" if session is you else ""),
                format_uptime(time.time() - session.since) + " ago",
                one_line(running) if (running := session.running) is not None else "-",
            ]
            for session in sorted(list(self.sessions), key=lambda s: s.since)
        ]
        return table(rows, ["peer", "since", "running"])

    def forget(self, session: TelnetSession) -> None:
        if session in self.sessions:
            self.sessions.discard(session)
            forget_filter_caches()
        self.pending.discard(session)


__all__ = ["TelnetConsole", "TelnetSession"]
