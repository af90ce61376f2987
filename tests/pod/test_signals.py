from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aiopod.pod import BeanContext, BeanState, HandlerResult, Pod, pass_context

from .helpers import arun, until


def listener(heard: list[tuple[str | None, dict[str, Any]]], ready: asyncio.Event | None = None) -> Any:
    """A bean that answers 'hello' with its label, then waits for 'bye'."""

    @pass_context
    async def bean(context: BeanContext) -> None:
        done = asyncio.Event()

        def hello(**kwargs: Any) -> str:
            heard.append((context.label, kwargs))
            return f"hello from {context.label}"

        def bye(**kwargs: Any) -> None:
            done.set()

        await context.add_signal_handler("hello", hello)
        await context.add_signal_handler("bye", bye)
        await done.wait()

    return bean


async def started(pod: Pod, count: int, sig: str = "hello") -> asyncio.Task[int]:
    """Run ``pod`` in a task and wait until ``count`` handlers for ``sig`` are registered."""
    run = asyncio.create_task(pod.run())
    await until(lambda: pod.signal_handlers(sig) == count)
    return run


def test_send_signal_reaches_every_handler_with_signal_and_kwargs() -> None:
    heard: list[tuple[str | None, dict[str, Any]]] = []

    async def main() -> list[HandlerResult]:
        pod = Pod()
        for label in ("a", "b", None):
            pod.add_bean(listener(heard), label=label)
        run = await started(pod, 3)
        results = await pod.send_signal("hello", who="pod", n=1)
        await pod.send_signal("bye")
        assert await run == 0
        return results

    results = arun(main())
    assert sorted(heard, key=str) == sorted(
        [(label, {"signal": "hello", "who": "pod", "n": 1}) for label in ("a", "b", None)], key=str
    )
    assert sorted(r.value for r in results) == ["hello from None", "hello from a", "hello from b"]
    assert all(r.ok and r.error is None and r.signal == "hello" for r in results)
    assert sorted(r.bean.id for r in results if r.bean is not None) == [1, 2, 3]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [("a", ["a"]), (["a"], ["a"]), (["a", "c"], ["a", "c"]), (("b",), ["b"]), (["nobody"], []), ([], [])],
)
def test_send_signal_with_labels_reaches_only_those_beans(labels: Any, expected: list[str]) -> None:
    heard: list[tuple[str | None, dict[str, Any]]] = []
    pod_level: list[dict[str, Any]] = []

    async def main() -> list[HandlerResult]:
        pod = Pod()
        for label in ("a", "b", "c", "a2"):
            pod.add_bean(listener(heard), label=label)
        pod.add_signal_handler("hello", lambda **kw: pod_level.append(kw))  # no bean: not addressed by labels
        run = await started(pod, 5)
        results = await pod.send_signal("hello", labels=labels)
        await pod.send_signal("bye")
        assert await run == 0
        return results

    results = arun(main())
    assert sorted(label for label, _ in heard) == expected
    assert sorted(r.value for r in results) == [f"hello from {label}" for label in expected]
    assert pod_level == []


def test_context_send_signal_with_labels_reaches_only_those_beans() -> None:
    heard: list[tuple[str | None, dict[str, Any]]] = []
    answers: list[Any] = []

    @pass_context
    async def sender(context: BeanContext) -> None:
        await until(lambda: context.pod.signal_handlers("hello") == 3)
        results = await context.send_signal("hello", labels=["b"], x=1)
        answers.extend(r.value for r in results)
        await context.send_signal("bye")

    pod = Pod()
    for label in ("a", "b", "c"):
        pod.add_bean(listener(heard), label=label)
    pod.add_bean(sender)
    assert arun(pod.run()) == 0
    assert heard == [("b", {"signal": "hello", "x": 1})]
    assert answers == ["hello from b"]


def test_sync_and_async_handlers_both_run_and_report_their_values() -> None:
    async def slow(**kwargs: Any) -> str:
        await asyncio.sleep(0)
        return f"async {kwargs['signal']} {kwargs['n']}"

    def fast(signal: str, n: int) -> str:
        return f"sync {signal} {n}"

    async def main() -> list[HandlerResult]:
        pod = Pod()
        pod.add_signal_handler("go", slow)
        pod.add_signal_handler("go", fast)
        return await pod.send_signal("go", n=2)

    results = arun(main())
    assert [(r.handler, r.value, r.error, r.bean) for r in results] == [
        (slow, "async go 2", None, None),
        (fast, "sync go 2", None, None),
    ]


def test_async_handlers_run_concurrently() -> None:
    entered: list[str] = []
    gate: dict[str, asyncio.Event] = {}

    async def first(**kwargs: Any) -> str:
        entered.append("first")
        await gate["second_entered"].wait()  # would deadlock if handlers ran one after the other
        return "first"

    async def second(**kwargs: Any) -> str:
        entered.append("second")
        gate["second_entered"].set()
        return "second"

    async def main() -> list[Any]:
        gate["second_entered"] = asyncio.Event()
        pod = Pod()
        pod.add_signal_handler("go", first)
        pod.add_signal_handler("go", second)
        return [r.value for r in await pod.send_signal("go")]

    assert arun(main(), timeout=3) == ["first", "second"]
    assert entered == ["first", "second"]


def test_a_failing_handler_is_reported_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    called: list[str] = []

    def sync_boom(**kwargs: Any) -> None:
        called.append("sync_boom")
        raise KeyError("sync")

    async def async_boom(**kwargs: Any) -> None:
        called.append("async_boom")
        raise ValueError("async")

    def fine(**kwargs: Any) -> int:
        called.append("fine")
        return 42

    async def main() -> list[HandlerResult]:
        pod = Pod()
        for handler in (sync_boom, async_boom, fine):
            pod.add_signal_handler("go", handler)
        return await pod.send_signal("go")

    results = arun(main())
    assert sorted(called) == ["async_boom", "fine", "sync_boom"]
    by_handler = {r.handler: r for r in results}
    assert isinstance(by_handler[sync_boom].error, KeyError) and not by_handler[sync_boom].ok
    assert isinstance(by_handler[async_boom].error, ValueError) and not by_handler[async_boom].ok
    assert by_handler[fine].ok and by_handler[fine].value == 42
    assert by_handler[sync_boom].value is None
    failures = [r for r in caplog.records if r.name == "aiopod.signals" and r.levelname == "ERROR"]
    assert len(failures) == 2
    assert "failed on signal 'go'" in failures[0].getMessage()


def test_send_signal_nobody_listens() -> None:
    assert arun(Pod().send_signal("nothing", labels="x")) == []
    assert arun(Pod().send_signal("nothing")) == []


def test_remove_signal_handler() -> None:
    def handler(**kwargs: Any) -> None:
        pass

    async def main() -> None:
        pod = Pod()
        pod.add_signal_handler("go", handler)
        assert pod.remove_signal_handler("go", handler) is True
        assert pod.remove_signal_handler("go", handler) is False
        assert await pod.send_signal("go") == []

    arun(main())


def test_context_remove_signal_handler_only_removes_its_own() -> None:
    results: list[Any] = []

    def shared(**kwargs: Any) -> str:
        return "shared"

    @pass_context
    async def keeper(context: BeanContext, done: asyncio.Event) -> None:
        await context.add_signal_handler("go", shared)
        await done.wait()

    @pass_context
    async def remover(context: BeanContext, done: asyncio.Event) -> None:
        await context.add_signal_handler("go", shared)
        assert await context.remove_signal_handler("go", shared) is True
        assert await context.remove_signal_handler("go", shared) is False
        results.extend(r.bean.label for r in await context.send_signal("go") if r.bean is not None)
        done.set()

    async def main() -> int:
        done = asyncio.Event()
        pod = Pod()
        pod.add_bean(keeper, label="keeper", done=done)
        pod.add_bean(remover, label="remover", done=done)
        return await pod.run()

    assert arun(main()) == 0
    assert results == ["keeper"]


def test_adding_a_handler_that_is_not_callable_fails() -> None:
    with pytest.raises(TypeError, match="signal handler for 'go' must be callable"):
        Pod().add_signal_handler("go", "not callable")  # type: ignore[arg-type]


def test_handlers_are_dropped_when_their_bean_ends() -> None:
    heard: list[tuple[str | None, dict[str, Any]]] = []

    async def main() -> None:
        pod = Pod()
        gone = pod.add_bean(listener(heard), label="gone")
        pod.add_bean(listener(heard), label="stays")
        run = await started(pod, 2)
        await pod.send_signal("bye", labels="gone")
        await pod.wait_beans_done("gone")
        assert gone.state is BeanState.FINISHED
        results = await pod.send_signal("hello")
        assert [r.value for r in results] == ["hello from stays"]
        assert pod.signal_handlers("hello") == 1
        await pod.send_signal("bye")
        assert await run == 0
        assert await pod.send_signal("hello") == []

    arun(main())


def test_handlers_of_a_cancelled_or_failed_bean_are_dropped() -> None:
    heard: list[tuple[str | None, dict[str, Any]]] = []

    @pass_context
    async def failing(context: BeanContext, go: asyncio.Event) -> None:
        await context.add_signal_handler("hello", lambda **kw: "failing")
        await go.wait()
        raise RuntimeError("bye")

    async def main() -> None:
        go = asyncio.Event()
        pod = Pod()
        pod.add_bean(listener(heard), label="cancelled")
        pod.add_bean(failing, label="failing", go=go)
        pod.add_bean(listener(heard), label="stays")
        run = await started(pod, 3)
        pod.cancel("cancelled")
        go.set()
        await pod.wait_beans_done("cancelled")
        await pod.wait_beans_done("failing")
        assert [r.value for r in await pod.send_signal("hello")] == ["hello from stays"]
        await pod.send_signal("bye")
        assert await run == 1

    arun(main())


def test_a_restarted_bean_hears_a_signal_once() -> None:
    runs: list[int] = []

    @pass_context
    async def flaky(context: BeanContext, ready: asyncio.Event, done: asyncio.Event) -> None:
        run = len(runs) + 1
        runs.append(run)
        await context.add_signal_handler("which", lambda **kw: run)
        if run < 3:
            raise RuntimeError(f"run {run} fails")
        ready.set()
        await done.wait()

    async def main() -> list[Any]:
        ready, done = asyncio.Event(), asyncio.Event()
        pod = Pod()
        bean = pod.add_bean(
            flaky, label="flaky", restart={"policy": "on-failure", "backoff": 0}, ready=ready, done=done
        )
        run = asyncio.create_task(pod.run())
        await ready.wait()
        values = [r.value for r in await pod.send_signal("which")]
        done.set()
        assert await run == 0
        assert bean.restarts == 2
        return values

    assert arun(main()) == [3]  # the handlers of runs 1 and 2 went with them


def test_failures_anywhere_keep_every_result_in_registration_order() -> None:
    calls: list[int] = []

    def make(n: int) -> Any:
        def handler(**kwargs: Any) -> int:
            calls.append(n)
            if n % 3 == 0:
                raise RuntimeError(f"handler {n}")
            return n

        return handler

    async def main() -> list[tuple[Any, str | None]]:
        pod = Pod()
        for n in range(10):
            pod.add_signal_handler("go", make(n))
        results = await pod.send_signal("go", extra=True)
        return [(r.value, str(r.error) if r.error else None) for r in results]

    outcome = arun(main())
    assert calls == list(range(10))  # each handler once, in order, failures or not
    assert outcome == [(None, f"handler {n}") if n % 3 == 0 else (n, None) for n in range(10)]


def test_a_sync_handler_returning_an_awaitable_is_awaited() -> None:
    async def later(value: str) -> str:
        await asyncio.sleep(0)
        return value

    async def main() -> list[Any]:
        pod = Pod()
        future = asyncio.get_running_loop().create_future()
        future.set_result("from a future")
        pod.add_signal_handler("go", lambda **kw: later("from a coroutine"))
        pod.add_signal_handler("go", lambda **kw: future)
        pod.add_signal_handler("go", lambda **kw: ["a", "list"])
        return [r.value for r in await pod.send_signal("go")]

    assert arun(main()) == ["from a coroutine", "from a future", ["a", "list"]]


def test_handlers_added_or_removed_during_a_send_take_effect_at_the_next() -> None:
    heard: list[str] = []

    async def main() -> None:
        pod = Pod()

        def late(**kwargs: Any) -> None:
            heard.append("late")

        def second(**kwargs: Any) -> None:
            heard.append("second")

        def first(**kwargs: Any) -> None:
            heard.append("first")
            pod.remove_signal_handler("go", second)
            pod.add_signal_handler("go", late)

        pod.add_signal_handler("go", first)
        pod.add_signal_handler("go", second)
        await pod.send_signal("go")
        assert heard == ["first", "second"]
        heard.clear()
        pod.remove_signal_handler("go", first)
        await pod.send_signal("go")
        assert heard == ["late"]

    arun(main())


def test_signal_results_read_like_a_list() -> None:
    def one(**kwargs: Any) -> int:
        return 1

    def two(**kwargs: Any) -> int:
        return 2

    async def main() -> None:
        pod = Pod()
        pod.add_signal_handler("go", one)
        pod.add_signal_handler("go", two)
        results = await pod.send_signal("go")
        assert len(results) == 2 and results
        assert results[0] == HandlerResult("go", one, None, 1)
        assert results[-1].value == 2
        assert [r.value for r in results[::-1]] == [2, 1]
        assert results == [HandlerResult("go", one, None, 1), HandlerResult("go", two, None, 2)]
        assert results != [HandlerResult("go", one, None, 1)]
        assert repr(results).startswith("[<HandlerResult 'go' ")
        with pytest.raises(IndexError):
            results[2]
        assert not await pod.send_signal("nobody")

    arun(main())
