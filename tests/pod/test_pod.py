from __future__ import annotations

import asyncio
import functools
import types
from typing import Any

import pytest

from aiopod.pod import (
    AiopodError,
    Bean,
    BeanContext,
    BeanNotFound,
    BeanState,
    ConfigError,
    Kind,
    Pod,
    PodStateError,
    pass_context,
)

from .helpers import arun, until


async def noop(**kwargs: Any) -> None:
    pass


async def forever(**kwargs: Any) -> None:
    await asyncio.Event().wait()


def make_pod(*labels: str | None) -> Pod:
    pod = Pod()
    for label in labels:
        pod.add_bean(noop, label=label)
    return pod


# -- ids and labels -------------------------------------------------------------------------


def test_ids_count_from_one_in_the_order_beans_are_added() -> None:
    pod = make_pod("a", None, "b")
    assert [b.id for b in pod.beans] == [1, 2, 3]
    assert [b.label for b in pod.beans] == ["a", None, "b"]
    assert all(b.state is BeanState.PENDING for b in pod.beans)
    assert [b.core for b in pod.beans] == [f"{__name__}:noop"] * 3
    assert all(b.kind is Kind.FUNCTION for b in pod.beans)


def _module_with_job(name: str) -> Any:
    """A module ``name`` defining ``async def job()`` (same qualname in every such module)."""
    module = types.ModuleType(name)
    exec("async def job():\n    return __name__\n", module.__dict__)
    return module


def test_a_coroutine_bean_is_named_by_its_own_module_when_two_share_a_qualname() -> None:
    one, two = _module_with_job("beans_one"), _module_with_job("beans_two")

    def wrapped(f: Any) -> Any:
        @functools.wraps(f)
        async def wrapper() -> Any:  # one code object for every function it wraps
            return await f()

        return wrapper

    async def main() -> list[str]:
        pod = Pod(keep_alive=True)
        task = asyncio.create_task(pod.run())
        beans = [pod.add_bean(m.job()) for m in (one, two, one, two)]
        beans += [pod.add_bean(wrapped(m.job)()) for m in (one, two)]
        beans.append(pod.add_bean(noop()))
        for bean in beans:
            await bean.wait()
        assert [b.task.result() for b in beans if b.task is not None][:4] == ["beans_one", "beans_two"] * 2
        pod.stop()
        assert await task == 0
        return [b.core for b in beans]

    assert arun(main()) == [
        "beans_one:job",
        "beans_two:job",
        "beans_one:job",
        "beans_two:job",
        f"{__name__}:job",  # the module whose code runs: the decorator's
        f"{__name__}:job",
        f"{__name__}:noop",
    ]


def test_get_beans_by_id_label_digit_string_and_bean() -> None:
    pod = make_pod("web", "worker", "worker")
    web, w1, w2 = pod.beans
    assert pod.get_beans(1) == [web]
    assert pod.get_beans("web") == [web]
    assert pod.get_beans("worker") == [w1, w2]
    assert pod.get_beans("3") == [w2]
    assert pod.get_beans(w1) == [w1]
    assert pod.get_bean("web") is web
    assert pod.get_bean(2) is w1


def test_get_bean_refuses_an_ambiguous_label() -> None:
    pod = make_pod("worker", "worker")
    with pytest.raises(LookupError, match=r"2 beans have label 'worker' \(ids 1, 2\); ask for one by id"):
        pod.get_bean("worker")


def test_bean_not_found_is_a_lookup_error_naming_ids_and_labels() -> None:
    pod = make_pod("web", None, "db")
    with pytest.raises(BeanNotFound) as info:
        pod.get_beans(7)
    assert isinstance(info.value, LookupError)
    assert isinstance(info.value, AiopodError)
    assert str(info.value) == "no bean with id 7; there are ids 1-3 and labels 'db', 'web'"
    with pytest.raises(LookupError) as by_label:
        pod.get_beans("cache")
    assert str(by_label.value) == "no bean with label 'cache'; there are ids 1-3 and labels 'db', 'web'"
    with pytest.raises(BeanNotFound, match="no bean with label '9'"):
        pod.get_beans("9")


def test_bean_not_found_in_an_empty_pod_and_without_labels() -> None:
    with pytest.raises(BeanNotFound) as empty:
        Pod().get_beans("x")
    assert str(empty.value) == "no bean with label 'x': the pod has no beans"
    with pytest.raises(BeanNotFound) as unlabelled:
        make_pod(None).get_beans(2)
    assert str(unlabelled.value) == "no bean with id 2; there are id 1 and no labels"


def test_bean_from_another_pod_is_not_found() -> None:
    stranger = make_pod("a").beans[0]
    with pytest.raises(BeanNotFound):
        make_pod("a").get_beans(stranger)


def test_a_bool_is_not_an_id() -> None:
    with pytest.raises(BeanNotFound):
        make_pod("a").get_beans(True)  # type: ignore[arg-type]


def test_add_bean_by_import_string_and_rejects_non_beans() -> None:
    pod = Pod()
    bean = pod.add_bean("asyncio.sleep", delay=0)
    assert (bean.core, bean.kind, bean.kwargs) == ("asyncio.sleep", Kind.FUNCTION, {"delay": 0})
    with pytest.raises(ConfigError, match="a plain \\(not async\\) function is not a bean"):
        pod.add_bean(lambda: None)
    with pytest.raises(TypeError, match="label must be a string"):
        pod.add_bean(noop, label=3)  # type: ignore[arg-type]
    assert len(pod.beans) == 1


# -- running ------------------------------------------------------------------------------


def test_run_runs_all_four_kinds_with_their_context() -> None:
    seen: dict[str, Any] = {}

    async def function(**kwargs: Any) -> None:
        seen["function"] = kwargs

    async def coroutine(value: int) -> None:
        seen["coroutine"] = value

    class ClassBean:
        def __init__(self, context: BeanContext) -> None:
            self.context = context

        async def __call__(self, **kwargs: Any) -> None:
            seen["class"] = (self.context.id, self.context.label, self.context.instance is self, kwargs)

    @pass_context(label="ctx")
    async def with_context(context: BeanContext, **kwargs: Any) -> None:
        seen["pass_context"] = (context.id, context.label, context.config.GREETING, kwargs)
        seen["loop"] = context.loop is asyncio.get_running_loop()
        seen["bean"] = context.bean

    pod = Pod({"GREETING": "hi"})
    pod.add_bean(function, a=1)
    pod.add_bean(coroutine(5))
    cls_bean = pod.add_bean(ClassBean, label="cls", b=2)
    ctx_bean = pod.add_bean(with_context, c=3)
    assert arun(pod.run()) == 0
    assert seen == {
        "function": {"a": 1},
        "coroutine": 5,
        "class": (3, "cls", True, {"b": 2}),
        "pass_context": (4, "ctx", "hi", {"c": 3}),
        "loop": True,
        "bean": ctx_bean,
    }
    assert isinstance(cls_bean.instance, ClassBean)
    assert [b.state for b in pod.beans] == [BeanState.FINISHED] * 4
    assert all(b.started_at is not None and b.ended_at is not None for b in pod.beans)


def test_an_empty_headless_pod_ends_at_once() -> None:
    pod = Pod()
    assert arun(pod.run(), timeout=2) == 0
    with pytest.raises(PodStateError, match="already run"):
        arun(pod.run())


def test_a_failing_bean_makes_exit_status_one() -> None:
    async def boom() -> None:
        raise ValueError("bad input")

    pod = Pod()
    bad = pod.add_bean(boom)
    good = pod.add_bean(noop)
    assert arun(pod.run()) == 1
    assert bad.state is BeanState.FAILED
    assert isinstance(bad.exception, ValueError) and str(bad.exception) == "bad input"
    assert good.state is BeanState.FINISHED and good.exception is None
    assert pod.exit_status == 1


def test_a_bean_whose_class_fails_to_build_is_failed() -> None:
    class Broken:
        def __init__(self, context: BeanContext) -> None:
            raise RuntimeError("no db")

        async def __call__(self) -> None:
            pass

    pod = Pod()
    bean = pod.add_bean(Broken)
    assert arun(pod.run()) == 1
    assert bean.state is BeanState.FAILED
    assert str(bean.exception) == "no db"


def test_hot_add_while_running_starts_the_bean_at_once() -> None:
    events: list[str] = []

    async def child(n: int) -> None:
        events.append(f"child {n}")

    @pass_context
    async def parent(context: BeanContext) -> None:
        bean = context.pod.add_bean(child, label="kid", n=1)
        events.append(f"added #{bean.id} {bean.state.value}")
        await context.wait_beans_done("kid")
        events.append(f"kid {bean.state.value}")

    pod = Pod()
    pod.add_bean(parent)
    assert arun(pod.run()) == 0
    assert events == ["added #2 running", "child 1", "kid finished"]
    assert pod.get_bean("kid").id == 2


def test_the_headless_pod_waits_for_hot_added_beans() -> None:
    release = asyncio.Event()
    order: list[str] = []

    async def late() -> None:
        await release.wait()
        order.append("late done")

    @pass_context
    async def starter(context: BeanContext) -> None:
        context.pod.add_bean(late)

    async def main() -> None:
        pod = Pod()
        pod.add_bean(starter)
        run = asyncio.create_task(pod.run())
        await until(lambda: len(pod.beans) == 2 and pod.beans[0].ended)
        assert not run.done()
        release.set()
        assert await run == 0
        order.append("pod done")

    arun(main())
    assert order == ["late done", "pod done"]


def test_add_bean_after_stop_is_refused() -> None:
    async def main() -> None:
        pod = Pod(stop_wait_time=0)
        pod.add_bean(forever)
        run = asyncio.create_task(pod.run())
        await until(lambda: pod.beans[0].state is BeanState.RUNNING)
        pod.stop()
        await run
        with pytest.raises(PodStateError, match="stopping; it takes no new beans"):
            pod.add_bean(noop)

    arun(main())


def test_stopping_turns_true_when_a_stop_begins_or_the_last_bean_ends() -> None:
    async def main() -> None:
        pod = Pod(stop_wait_time=0)
        assert pod.stopping is False
        pod.add_bean(forever)
        seen: list[bool] = []
        refused: list[str] = []

        def on_stop(signal: str) -> None:
            seen.append(pod.stopping)
            try:
                pod.add_bean(noop)
            except PodStateError as exc:
                refused.append(str(exc))

        pod.on_stop(on_stop)
        run = asyncio.create_task(pod.run())
        await until(lambda: pod.beans[0].state is BeanState.RUNNING)
        assert pod.stopping is False
        pod.stop()
        await run
        assert seen == [True]
        assert refused == ["the pod is stopping; it takes no new beans"]
        assert pod.stopping is True

        headless = Pod()
        headless.add_bean(noop)
        assert await headless.run() == 0
        assert headless.stopping is True  # it ended with its last bean, no stop asked for
        with pytest.raises(PodStateError, match="stopping; it takes no new beans"):
            headless.add_bean(noop)

    arun(main())


# -- cancel and wait ----------------------------------------------------------------------


def test_cancel_a_running_bean() -> None:
    async def main() -> tuple[int, list[Bean], Bean, Bean]:
        pod = Pod()
        stuck = pod.add_bean(forever, label="stuck")
        other = pod.add_bean(forever, label="other")
        run = asyncio.create_task(pod.run())
        await until(lambda: stuck.state is BeanState.RUNNING)
        cancelled = pod.cancel("stuck")
        await pod.wait_beans_done("stuck")
        assert other.state is BeanState.RUNNING
        pod.cancel(other.id)
        return await run, cancelled, stuck, other

    status, cancelled, stuck, other = arun(main())
    assert status == 0  # a cancelled bean is not a failure
    assert cancelled == [stuck]
    assert stuck.state is BeanState.CANCELLED and other.state is BeanState.CANCELLED
    assert stuck.exception is None


def test_cancel_before_run_closes_a_pending_coroutine_object() -> None:
    pod = Pod()
    bean = pod.add_bean(forever())  # never awaited: filterwarnings=error would catch a RuntimeWarning
    assert pod.cancel(1) == [bean]
    assert bean.state is BeanState.CANCELLED
    assert arun(pod.run(), timeout=2) == 0
    assert bean.started_at is None


def test_cancel_unknown_bean_raises_bean_not_found() -> None:
    with pytest.raises(BeanNotFound):
        make_pod("a").cancel("b")


def test_cancel_ends_a_bean_with_restart_always_for_good() -> None:
    runs: list[int] = []

    async def service() -> None:
        runs.append(1)
        await asyncio.Event().wait()

    async def main() -> tuple[int, Bean]:
        pod = Pod()
        bean = pod.add_bean(service, restart={"policy": "always", "backoff": 0})
        run = asyncio.create_task(pod.run())
        await until(lambda: bean.state is BeanState.RUNNING)
        pod.cancel(bean)
        return await run, bean

    status, bean = arun(main(), timeout=5)
    assert status == 0
    assert bean.state is BeanState.CANCELLED
    assert (bean.restarts, len(runs)) == (0, 1)


def test_wait_beans_done_waits_for_every_bean_with_the_label() -> None:
    gates = [asyncio.Event(), asyncio.Event()]
    log: list[str] = []

    async def worker(n: int) -> None:
        await gates[n].wait()
        log.append(f"worker {n}")

    @pass_context
    async def watcher(context: BeanContext) -> None:
        await context.wait_beans_done("worker")
        log.append("watcher saw workers done")

    async def main() -> None:
        pod = Pod()
        pod.add_bean(worker, label="worker", n=0)
        pod.add_bean(worker, label="worker", n=1)
        pod.add_bean(watcher)
        run = asyncio.create_task(pod.run())
        await until(lambda: all(b.state is BeanState.RUNNING for b in pod.beans))
        gates[1].set()
        await pod.wait_beans_done(2)
        assert log == ["worker 1"]
        gates[0].set()
        await pod.wait_beans_done("worker")
        assert await run == 0
        await pod.wait_beans_done("worker")  # already ended: returns at once

    arun(main())
    assert log == ["worker 1", "worker 0", "watcher saw workers done"]


def test_wait_beans_done_unknown_label_raises() -> None:
    with pytest.raises(BeanNotFound, match="no bean with label 'nope'"):
        arun(make_pod("a").wait_beans_done("nope"))
