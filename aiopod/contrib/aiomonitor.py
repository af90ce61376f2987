"""aiomonitor on the pod's loop: ``telnet 127.0.0.1 20101``, then ``ps``, ``where``, ``console``.

::

    BEANS = [{"core": "aiopod.contrib.aiomonitor.AioMonitorAdapter", "port": 20101, "label": "monitor"}]

kwargs: ``host`` (127.0.0.1; aiomonitor has no password, so only loopback is accepted),
``port`` (its telnet UI, 20101), ``webui_port`` (20102), ``console_port`` (the Python
REPL behind the ``console`` command, 20103), ``console_enabled`` (True),
``max_termination_history``. Every other kwarg becomes a name in the monitor's Python
console, beside ``pod`` and ``context``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping
from typing import Any

from aiomonitor import Monitor, start_monitor

from ..pod import BeanContext
from ._net import as_port, check_free, is_loopback, port_problems
from .adapter import Adapter

logger = logging.getLogger(__name__)

PORTS = {"port": 20101, "webui_port": 20102, "console_port": 20103}
#: The longest the monitor's own thread gets to close its servers before the bean moves on.
CLOSE_TIMEOUT = 2.0


class AioMonitorAdapter(Adapter):
    """The bean: starts aiomonitor's servers (in aiomonitor's thread) and closes them on stop."""

    def __init__(self, context: BeanContext) -> None:
        super().__init__(context)
        self.monitor: Monitor | None = None

    @classmethod
    def kwargs_problems(cls, kwargs: Mapping[str, Any]) -> list[str]:
        """Bad ports, a host other than loopback, ``hook_task_factory``."""
        problems = port_problems(kwargs, PORTS)
        host = kwargs.get("host", "127.0.0.1")
        if not is_loopback(host):
            problems.append(
                f"host: {host!r} is not loopback, and aiomonitor has no password: anyone who can reach it "
                "could run code in this pod; use host='127.0.0.1' (and an SSH tunnel to reach it from afar)"
            )
        if kwargs.get("hook_task_factory"):
            problems.append(
                "hook_task_factory: aiopod does not let aiomonitor replace the loop's task factory "
                "(every bean's task would change type); leave it out"
            )
        return problems

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int | str = PORTS["port"],
        webui_port: int | str = PORTS["webui_port"],
        console_port: int | str = PORTS["console_port"],
        console_enabled: bool = True,
        max_termination_history: int | None = None,
        **names: Any,
    ) -> None:
        ports = {"port": as_port(port), "webui_port": as_port(webui_port), "console_port": as_port(console_port)}
        # aiomonitor binds in its own thread: a taken port would fail there unseen (telnet)
        # or leave start_monitor() waiting for ever (web UI), so check them here first.
        for name in ("port", "webui_port", "console_port") if console_enabled else ("port", "webui_port"):
            check_free(f"aiomonitor ({name})", host, ports[name])
        local_names = {"__name__": "__console__", "__doc__": None, "pod": self.context.pod, "context": self.context}
        monitor = self.monitor = start_monitor(
            asyncio.get_running_loop(),
            host=host,
            port=ports["port"],
            webui_port=ports["webui_port"],
            console_port=ports["console_port"],
            console_enabled=console_enabled,
            max_termination_history=max_termination_history,
            locals={**local_names, **names},
        )
        logger.info(
            "aiomonitor running on telnet://%s:%d and http://%s:%d", host, ports["port"], host, ports["webui_port"]
        )
        try:
            await self.stop_request.wait()
        finally:
            await _close(monitor, self.stop_request.bounded(CLOSE_TIMEOUT))


async def _close(monitor: Monitor, within: float) -> None:
    """``monitor.close()`` joins aiomonitor's thread: do it off the loop, and wait a bounded time."""
    loop = asyncio.get_running_loop()
    closed = loop.create_future()

    def close() -> None:
        try:
            monitor.close()
        finally:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
                loop.call_soon_threadsafe(_set_done, closed)

    # A daemon thread, not the default executor: the loop's teardown joins executor threads.
    threading.Thread(target=close, name="aiopod-aiomonitor-close", daemon=True).start()
    done, _ = await asyncio.wait({closed}, timeout=within)
    if not done:
        logger.warning("aiomonitor did not close within %g s; leaving its thread behind", within)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


__all__ = ["AioMonitorAdapter"]
