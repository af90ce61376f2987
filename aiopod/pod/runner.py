"""Run a pod in this process: its loop, its signals (see ``_process``), a bounded close."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ._deadline import bounded_wait
from ._loops import loop_factory
from ._notify import notify
from ._process import PodProcess
from .config import PodConfig
from .pod import CANCEL_GRACE, Pod

logger = logging.getLogger("aiopod")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: str | int) -> None:
    """Log to stderr at ``level`` unless the application configured logging itself."""
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr)
    logging.getLogger("aiopod").setLevel(level)


async def _leftover_tasks(pod: Pod) -> list[asyncio.Task[Any]]:
    """Cancel tasks the beans started and did not keep track of, so loop teardown cannot hang.

    Returns the tasks still pending after the grace (those of beans reported as refusing included).
    """
    refused = [bean.task for bean in pod.refused if bean.task is not None]
    skip = {asyncio.current_task(), *refused}  # reported already
    tasks = [t for t in asyncio.all_tasks() if t not in skip]
    if tasks:
        logger.debug("cancelling %d tasks left behind by beans", len(tasks))
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=CANCEL_GRACE)
    stuck = [t for t in tasks if not t.done()]
    if stuck:
        logger.error("%d tasks started by beans ignored cancellation: %s", len(stuck),
                     ", ".join(t.get_name() for t in stuck[:10]))  # fmt: skip
    return [*refused, *stuck]


async def _await(future: Awaitable[Any]) -> Any:
    return await future


def run_pod(
    settings: PodConfig,
    *,
    keep_alive: bool = False,
    guest: Callable[[Pod], Awaitable[Any]] | None = None,
    setup: Callable[[Pod], None] | None = None,
) -> int:
    """Run a pod in this process until it ends or is stopped; return the exit status.

    ``guest(pod)`` runs beside the pod (the console); when it returns, the pod stops.
    ``setup(pod)`` runs before the loop starts (the CLI serves the console socket with it).
    SIGINT/SIGTERM stop the pod, SIGHUP/SIGUSR1/SIGUSR2 reach the beans' handlers,
    SIGQUIT dumps the stacks. This never ends the process: a bean that refuses to stop
    is reported and left behind on the closed loop (``aiopod run`` then ends the process).
    """
    process = PodProcess.current()
    if process is not None:
        return _run(settings, process, keep_alive, guest, setup)
    process = PodProcess(ends_process=False)
    process.install()
    try:
        return _run(settings, process, keep_alive, guest, setup)
    finally:
        process.uninstall()


def _run(
    settings: PodConfig,
    process: PodProcess,
    keep_alive: bool,
    guest: Callable[[Pod], Awaitable[Any]] | None,
    setup: Callable[[Pod], None] | None = None,
) -> int:
    configure_logging(settings.log_level)
    factory = loop_factory(settings.loop_type)
    pod = Pod(
        settings.config,
        stop_wait_time=bounded_wait(settings.stop_wait_time),
        keep_alive=keep_alive,
        bean_history=settings.bean_history,
        watchdog=settings.watchdog,
    )
    for spec in settings.beans:
        pod.add_spec(spec)
    pod.on_start(lambda: notify("READY=1"))
    pod.on_stop(lambda _: notify("STOPPING=1"))
    runner = asyncio.Runner(debug=settings.debug, loop_factory=factory)
    loop = runner.get_loop()
    if settings.debug:
        loop.slow_callback_duration = 0.1
    # An executor of our own, so that closing the loop can leave a job a bean left running
    # instead of joining it for ever (loop.shutdown_default_executor() does, on 3.11).
    executor = ThreadPoolExecutor(thread_name_prefix="aiopod-executor")
    loop.set_default_executor(executor)
    process.attach(pod, loop)
    left: list[asyncio.Task[Any]] = []
    try:
        if setup is not None:  # once the pod owns the signals: a stop from here on is a normal one
            setup(pod)
        main = loop.create_task(_main(pod, guest))
        while True:
            try:
                status: int = runner.run(_await(main))
                break
            except (KeyboardInterrupt, SystemExit):
                continue  # raised in a bean: its done callback has asked the pod to stop
        left = runner.run(_leftover_tasks(pod))
    finally:
        _close(loop, executor, left)
        process.abandoned = left
        process.loop_closed()
    return status


def _close(loop: asyncio.AbstractEventLoop, executor: ThreadPoolExecutor, left: list[asyncio.Task[Any]]) -> None:
    """Close the loop in bounded time (``Runner.close()`` waits for ever on a task that refuses to end)."""
    if not loop.is_closed():
        loop.run_until_complete(_bounded(loop.shutdown_asyncgens(), CANCEL_GRACE))
        executor.shutdown(wait=False, cancel_futures=True)  # a running job goes on in its thread
        if left:
            loop.set_exception_handler(_QuietAbout(left))
        loop.close()


async def _bounded(coro: Awaitable[Any], seconds: float) -> None:
    try:
        await asyncio.wait_for(coro, seconds)
    except TimeoutError:
        logger.warning("async generators did not close within %g s", seconds)


class _QuietAbout:
    """An exception handler that drops "Task was destroyed but it is pending" for tasks reported already."""

    def __init__(self, tasks: list[asyncio.Task[Any]]) -> None:
        self._ids = {id(task) for task in tasks}

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if id(context.get("task")) in self._ids:
            return
        loop.default_exception_handler(context)


async def _main(pod: Pod, guest: Callable[[Pod], Awaitable[Any]] | None) -> int:
    if guest is None:
        return await pod.run()
    pod_task = asyncio.create_task(pod.run())
    guest_task = asyncio.create_task(_await(guest(pod)))
    await asyncio.wait({pod_task, guest_task}, return_when=asyncio.FIRST_COMPLETED)
    if guest_task.done():
        if not guest_task.cancelled() and guest_task.exception() is not None:
            logger.error("the console failed", exc_info=guest_task.exception())
        pod.request_stop("SIGTERM")
    status = await pod_task
    if not guest_task.done():
        guest_task.cancel()
        await asyncio.wait({guest_task}, timeout=CANCEL_GRACE)
    return status


def options_from(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Map CLI-style option names (``log_level``) to config keys (``LOG_LEVEL``)."""
    return {key.upper(): value for key, value in mapping.items() if value is not None}
