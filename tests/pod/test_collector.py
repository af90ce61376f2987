"""The pod's one collector seam, seen from beans: bursts run with what existed frozen, user code with the collector on.

A start burst (the pod making its beans) and a burst of ``BEANS`` entries (``load``) leave
the objects that existed before out of the collector's passes and hand them back after,
an error included; an application that freezes or disables the collector is left alone.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from aiopod.pod import BeanContext, Pod, load, pass_context

from .helpers import arun, until


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


class Node:
    pass


def collected_inside() -> bool:
    """Make a cycle, drop it and collect: True when the collector freed it."""
    node = Node()
    node.self = node  # type: ignore[attr-defined]
    ref = weakref.ref(node)
    del node
    gc.collect()
    return ref() is None


def start_burst() -> dict[str, Any]:
    """Run a pod whose class-kind bean is built by the start burst; what its ``__init__`` saw."""
    seen: dict[str, Any] = {}

    class Built:
        def __init__(self, context: BeanContext) -> None:
            seen["frozen"], seen["enabled"] = gc.get_freeze_count(), gc.isenabled()
            seen["cycle collected"] = collected_inside()

        async def __call__(self) -> None:
            pass

    pod = Pod()
    pod.add_bean(Built)
    assert arun(pod.run()) == 0
    return seen


def test_a_start_burst_leaves_what_exists_out_and_gives_it_back() -> None:
    before = gc.get_freeze_count()
    seen = start_burst()
    assert seen["frozen"] > before and seen["enabled"] is True
    assert seen["cycle collected"] is True  # cycles made inside the burst are still collected
    # All handed back at the end: on Python 3.12 the interpreter's own frozen objects too.
    assert gc.get_freeze_count() == 0


def test_a_burst_of_beans_entries_gives_the_frozen_objects_back_even_on_error() -> None:
    inside: list[int] = []

    class Checked:
        def __init__(self, context: BeanContext) -> None:
            pass

        async def __call__(self) -> None:
            pass

        @classmethod
        def check_kwargs(cls, kwargs: Mapping[str, Any]) -> None:
            inside.append(gc.get_freeze_count())
            raise RuntimeError("a bug in check_kwargs")

    before = gc.get_freeze_count()
    with pytest.raises(RuntimeError, match="a bug in check_kwargs"):
        load(None, options={"BEANS": [{"core": Checked}]})
    assert len(inside) == 1 and inside[0] > before
    assert gc.get_freeze_count() == before


def test_an_application_that_freezes_or_disables_the_collector_is_left_alone() -> None:
    gc.freeze()
    try:
        frozen_before = gc.get_freeze_count()
        seen = start_burst()
        assert seen["frozen"] == frozen_before  # no freeze of its own on top of the application's
        assert gc.get_freeze_count() == frozen_before  # not unfrozen behind its back
    finally:
        gc.unfreeze()
    before = gc.get_freeze_count()
    gc.disable()
    seen = start_burst()
    assert seen["frozen"] == before and seen["enabled"] is False
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
