"""``frozen()``, the one collector seam: user code runs with the collector on; the lean bean record."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from aiopod.pod import BeanContext, Pod, pass_context
from aiopod.pod._collector import frozen

from .helpers import arun, until


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_frozen_leaves_what_exists_out_and_gives_it_back_even_on_error() -> None:
    with frozen():
        assert gc.get_freeze_count() > 0 and gc.isenabled()
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), frozen():
        raise RuntimeError("boom")
    assert gc.get_freeze_count() == 0


def test_cycles_made_inside_the_block_are_still_collected() -> None:
    class Node:
        pass

    with frozen():
        node = Node()
        node.self = node  # type: ignore[attr-defined]
        ref = weakref.ref(node)
        del node
        gc.collect()
        assert ref() is None


def test_an_application_that_freezes_or_disables_the_collector_is_left_alone() -> None:
    gc.freeze()
    try:
        frozen_before = gc.get_freeze_count()
        with frozen():
            pass
        assert gc.get_freeze_count() == frozen_before  # not unfrozen behind its back
    finally:
        gc.unfreeze()
    gc.disable()
    with frozen():
        assert gc.get_freeze_count() == 0
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
        for _ in range(1000):
            pod.add_bean(bean, done=done)
        pod.add_bean(Built)
        task = asyncio.create_task(pod.run())
        await until(lambda: pod.signal_handlers("go") == 1000)
        results = await pod.send_signal("go")
        done.set()
        assert await task == 0
        return [r.value for r in results]

    during_signal = arun(main())
    assert built == [True] and set(first_steps) == {True}
    assert set(during_signal) == {True} and len(during_signal) == 1000
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
