"""A pod inside the test's own event loop, checked for leaks when it stops."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ..pod import Bean, BeanState, Pod, SignalResults, load
from ..pod.bean import ENDED
from ..pod.spec import read_beans

logger = logging.getLogger("aiopod.testing")


class PodProblem(AssertionError):
    """The pod under test left something behind: a failed bean, a leaked task, a lost exception."""


async def wait_until(predicate: Callable[[], object], within: float = 5.0) -> None:
    """Wait until ``predicate()`` is true, checked every 5 ms; ``TimeoutError`` after ``within`` s.

    For state a pod sets from its callbacks and offers no event for (a bean's state, a
    handler being registered).
    """
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - an arbitrary predicate has no event to wait on
            await asyncio.sleep(0.005)


class PodHarness:
    """What a test holds while its pod runs: the pod and a few waiting helpers."""

    def __init__(self, pod: Pod) -> None:
        self.pod = pod

    def bean(self, ref: int | str) -> Bean:
        return self.pod.get_bean(ref)

    async def wait_for_state(self, ref: int | str, *states: str | BeanState, within: float = 5.0) -> list[Bean]:
        """Wait until every bean ``ref`` is in one of ``states`` (default: ended)."""
        wanted = {BeanState(s) for s in states} if states else set(ENDED)
        async with asyncio.timeout(within):
            while True:
                beans = self.pod.get_beans(ref)
                if all(b.state in wanted for b in beans):
                    return beans
                await asyncio.sleep(0.005)

    async def wait_until(self, predicate: Callable[[], object], within: float = 5.0) -> None:
        """Wait until ``predicate()`` is true (see :func:`wait_until`)."""
        await wait_until(predicate, within)

    async def send_signal(self, sig: str, labels: str | Iterable[str] | None = None, **kw: Any) -> SignalResults:
        return await self.pod.send_signal(sig, labels, **kw)


@asynccontextmanager
async def start_pod(
    *beans: Any,
    config: str | Path | Mapping[str, Any] | None = None,
    stop_wait_time: float = 1.0,
    expect_failures: bool = False,
    stop_timeout: float = 10.0,
) -> AsyncIterator[PodHarness]:
    """Run a pod in the current loop for the ``async with`` block, then stop and check it.

    ``beans`` are import strings, bean objects, or ``BEANS``-style dicts; ``config`` is a
    config file or a mapping of UPPER_CASE keys. On exit the pod gets SIGTERM semantics;
    ``PodProblem`` is raised if a bean failed (unless ``expect_failures``), refused to
    stop, left a task running, or an exception was never retrieved.
    """
    loop = asyncio.get_running_loop()
    if isinstance(config, str | Path):  # read as ``aiopod run -c`` reads it
        settings = load(config, environ={})
        pod = Pod(settings.config, stop_wait_time=stop_wait_time, keep_alive=True)
        specs, notices = settings.beans, settings.notices
    else:
        pod = Pod(config, stop_wait_time=stop_wait_time, keep_alive=True)
        specs, notices = [], []
    # BEANS-style dicts are read by the same function as a config's entries (config_file too)
    entries = [bean if isinstance(bean, Mapping) else {"core": bean} for bean in beans]
    more_specs, more_notices = read_beans(entries, "start_pod")
    for line in [*notices, *more_notices]:
        logger.warning("%s", line)
    for spec in [*specs, *more_specs]:
        pod.add_spec(spec)
    lost: list[dict[str, Any]] = []
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: lost.append(context))
    before = asyncio.all_tasks()
    runner = asyncio.create_task(pod.run(), name="aiopod.testing pod")
    await asyncio.sleep(0)  # let the pod start its beans
    try:
        yield PodHarness(pod)
    finally:
        pod.stop()
        try:
            async with asyncio.timeout(stop_timeout):
                await runner
            problems = await _leftovers(before | {runner, asyncio.current_task()}, pod)
            gc.collect()  # makes "exception was never retrieved" show up now
        finally:
            loop.set_exception_handler(previous_handler)
    problems += [f"exception never retrieved: {c.get('message')} {c.get('exception')!r}" for c in lost]
    if not expect_failures:
        problems += [f"bean {b.describe()} failed: {b.exception!r}" for b in pod.beans if b.state is BeanState.FAILED]
    problems += [f"bean {b.describe()} refused to stop" for b in pod.refused]
    if problems:
        raise PodProblem("the pod under test left problems:\n  " + "\n  ".join(problems))


async def _leftovers(known: set[Any], pod: Pod) -> list[str]:
    """Tasks started during the test that are still running after the pod stopped."""
    leaked = [t for t in asyncio.all_tasks() if t not in known and not t.done()]
    if not leaked:
        return []
    for task in leaked:
        task.cancel()
    await asyncio.wait(leaked, timeout=1.0)
    return [f"task leaked (still running after the pod stopped): {t!r}" for t in leaked]
