"""Remote sessions: the console socket's sessions, evaluated by the pod's evaluator.

The socket server (:mod:`aiopod.console.server`) does the I/O in its own thread; this
adds what a session means: a namespace of its own (with a careful ``stop()``, an
``h()`` that says what leaving means here, and ``sessions()``), statements handed to
the :class:`~aiopod.console.evaluator.Evaluator` with the session's output sink, and
interrupts.

Every pod makes a ``RemoteConsole`` at start-up, so this module imports only the socket
server. The helpers (``namespace``, which brings ``pydoc``) are imported when the first
session opens, the evaluator at the first statement, both in the console thread: a pod
nobody attaches to never pays for them, and the pod's loop never runs their imports.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..pod import Pod
from ._switch import short_switch_interval
from .protocol import ProtocolError
from .server import ConsoleServer, SocketSession

if TYPE_CHECKING:
    from .evaluator import Evaluator, Outcome
    from .evaluator import Session as Evaluation

#: The sessions' own helpers, for ``h()`` (after the ones every console has).
SESSION_HELPERS = "session, peer, uid, since, running statement"
LEAVING = "\nCtrl-C interrupts the running statement; Ctrl-\\ shows where the pod's loop thread is."


class RemoteConsole(ConsoleServer):
    """The console socket with sessions that run statements on the pod's loop."""

    FRAMES = ConsoleServer.FRAMES | {"run", "interrupt", "answer"}

    def __init__(self, pod: Pod, path: Path, *, name: str) -> None:
        super().__init__(pod, path, name=name)
        self._evaluator: Evaluator | None = None
        self._making: asyncio.Lock | None = None
        self._evaluations: dict[int, Evaluation] = {}
        self._asks: dict[int, dict[int, asyncio.Future[bool]]] = {}
        self._statements: dict[int, str] = {}

    def opened(self, session: SocketSession) -> None:
        # The loop waits for the GIL at most 1 ms while this thread builds the namespace (and
        # the first session imports its modules, ~10 ms of CPU): without it, up to 5 ms a turn.
        with short_switch_interval():
            session.namespace = self.namespace(session)
        self._asks[session.number] = {}

    def closed_session(self, session: SocketSession) -> None:
        evaluation = self._evaluations.pop(session.number, None)
        if evaluation is not None:
            if evaluation.busy:  # the client left mid-statement: stop it, as Ctrl-C would
                evaluation.interrupt()
            evaluation.close()
        for future in self._asks.pop(session.number, {}).values():
            future.get_loop().call_soon_threadsafe(future.cancel)

    def running(self, session: SocketSession) -> str | None:
        """The statement ``session`` runs, if any."""
        return self._statements.get(session.number)

    # -- frames (the console thread)
    def on_run(self, session: SocketSession, message: dict[str, Any]) -> None:
        code = message.get("code")
        if not isinstance(code, str):
            raise ProtocolError("a 'run' frame needs a 'code' string")
        task = asyncio.ensure_future(self._statement(session, message.get("id"), code))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _statement(self, session: SocketSession, number: Any, code: str) -> None:
        try:
            evaluation = await self._evaluation(session)
            future = evaluation.submit(code)
        except Exception as exc:  # SessionBusy; the pod has stopped (PodStateError), or its loop is gone
            session.send({"type": "done", "id": number, "status": "error", "error": f"{exc}\n"})
            return
        self._statements[session.number] = code
        try:
            outcome: Outcome = await asyncio.wrap_future(future)
        finally:
            self._statements.pop(session.number, None)
        session.flush()  # the statement's output before its outcome
        reply: dict[str, Any] = {"type": "done", "id": number, "status": outcome.status, "plain": outcome.plain}
        if outcome.status == "ok":
            reply["result"] = outcome.text
        elif outcome.text is not None:
            reply["error"] = outcome.text + "\n"
        session.send(reply)

    async def _evaluation(self, session: SocketSession) -> Evaluation:
        evaluation = self._evaluations.get(session.number)
        if evaluation is not None:
            return evaluation
        evaluator = await self._the_evaluator()
        evaluation = evaluator.session(
            session.namespace, lambda text: session.write(text), lambda text: session.write(text, "stderr")
        )
        if session.closed:
            evaluation.close()
        else:
            self._evaluations[session.number] = evaluation
        return evaluation

    async def _the_evaluator(self) -> Evaluator:
        """The pod's evaluator, made on the pod's loop at the first statement (unattached pods pay nothing)."""
        if self._evaluator is not None:
            return self._evaluator
        with short_switch_interval():  # at a pod's first statement, in this thread (see ``opened``)
            from .evaluator import Evaluator

        if self._making is None:
            self._making = asyncio.Lock()
        async with self._making:
            if self._evaluator is None:

                async def make() -> Evaluator:
                    return Evaluator.for_pod(self.pod)

                made = asyncio.run_coroutine_threadsafe(make(), await self.pod_running())
                self._evaluator = await asyncio.wrap_future(made)
        return self._evaluator

    def on_interrupt(self, session: SocketSession, message: dict[str, Any]) -> None:
        evaluation = self._evaluations.get(session.number)
        if evaluation is not None:
            evaluation.interrupt()

    def on_answer(self, session: SocketSession, message: dict[str, Any]) -> None:
        future = self._asks.get(session.number, {}).get(message.get("id", -1))
        if future is not None:
            future.get_loop().call_soon_threadsafe(_resolve, future, bool(message.get("value")))

    # -- the session's namespace (its helpers run on the pod's loop)
    def namespace(self, session: SocketSession) -> dict[str, Any]:
        # The first session imports them, in this thread: see the module's docstring.
        from .namespace import Text, build_namespace, careful_stop, format_uptime, one_line, remote_helpers, table

        namespace = build_namespace(self.pod)
        ids = itertools.count(1)
        server = self

        async def ask(question: str) -> bool:
            future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            number = next(ids)
            asks = server._asks.get(session.number)
            if asks is None:
                return False
            asks[number] = future
            server.loop.call_soon_threadsafe(session.send, {"type": "ask", "id": number, "question": question})
            try:
                return await future
            finally:
                asks.pop(number, None)

        stop = careful_stop(server.pod, ask, name=server.name, others=lambda: len(server.sessions) - 1)

        def sessions() -> Text:
            """Who is attached to this pod's console socket."""
            rows = []
            for other in list(server.sessions.values()):
                running = server.running(other)
                rows.append(
                    [
                        f"#{other.number}" + (" (you)" if other is session else ""),
                        f"pid {other.pid}",
                        other.uid,
                        format_uptime(time.time() - other.since) + " ago",
                        one_line(running) if running is not None else "-",
                    ]
                )
            return table(rows, ["session", "peer", "uid", "since", "running"])

        def h() -> Text:
            """What this session's helpers do, and what exit() and stop() mean here."""
            return Text(remote_helpers(SESSION_HELPERS) + LEAVING)

        def input(prompt: object = "") -> str:
            """Not here: the builtin would read the pod's own stdin and hold its loop."""
            raise RuntimeError(
                "input() in a remote session would read the pod's own stdin and block its loop; "
                "put the value in the statement instead"
            )

        namespace.update(stop=stop, sessions=sessions, h=h, input=input)
        return namespace


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)
