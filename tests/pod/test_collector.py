"""The collector pause (one seam: reading a config's entries), never around user code; the lean bean record."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from aiopod.pod import BeanContext, Pod, pass_context
from aiopod.pod._collector import PAUSE_FROM, collector_paused

from .helpers import arun, until


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_a_burst_pauses_the_collector_and_resumes_it_even_on_error() -> None:
    with collector_paused(PAUSE_FROM):
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused(PAUSE_FROM):
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_small_burst_leaves_the_collector_alone() -> None:
    with collector_paused(PAUSE_FROM - 1):
        assert gc.isenabled()


def test_a_collector_the_application_turned_off_stays_off() -> None:
    gc.disable()
    with collector_paused(PAUSE_FROM):
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_user_code_run_by_the_pod_runs_with_the_collector_on() -> None:
    first_steps: list[bool] = []
    built: list[bool] = []

    @pass_context
    async def bean(context: BeanContext, done: asyncio.Event) -> None:
        first_steps.append(gc.isenabled())  # runs after the start loop: the collector is back
        await context.add_signal_handler("go", lambda **kw: gc.isenabled())
        await done.wait()

    class Built:
        def __init__(self, context: BeanContext) -> None:
            built.append(gc.isenabled())  # made by the start loop: user code, never paused

        async def __call__(self) -> None:
            pass

    async def main() -> list[bool]:
        done = asyncio.Event()
        pod = Pod()
        for _ in range(PAUSE_FROM):
            pod.add_bean(bean, done=done)
        pod.add_bean(Built)
        task = asyncio.create_task(pod.run())
        await until(lambda: pod.signal_handlers("go") == PAUSE_FROM)
        results = await pod.send_signal("go")
        done.set()
        assert await task == 0
        return [r.value for r in results]

    during_signal = arun(main())
    assert built == [True] and set(first_steps) == {True}
    assert set(during_signal) == {True} and len(during_signal) == PAUSE_FROM
    assert gc.isenabled()


def test_a_bean_makes_its_context_once_and_shares_empty_kwargs() -> None:
    async def noop() -> None:
        pass

    pod = Pod()
    first, second = pod.add_bean(noop), pod.add_bean(noop, n=1)
    assert first.context is first.context and first.context.bean is first
    assert dict(first.kwargs) == {} and second.kwargs == {"n": 1}
    with pytest.raises(TypeError):
        first.kwargs["n"] = 2  # type: ignore[index]
