from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from aiopod.pod import Bean, BeanContext, BeanState, Pod, pass_context
from aiopod.pod import pod as pod_module

from .helpers import arun, until


@pass_context
async def polite(context: BeanContext, heard: list[dict[str, Any]]) -> str:
    """Ends as soon as it hears the stop signal."""
    stop = asyncio.Event()

    def on_stop(**kwargs: Any) -> str:
        heard.append(kwargs)
        stop.set()
        return "stopping"

    await context.add_signal_handler("SIGTERM", on_stop)
    await context.add_signal_handler("SIGINT", on_stop)
    await stop.wait()
    return "done"


async def deaf(cancelled: list[str]) -> None:
    """Ignores the stop signal; only cancellation ends it."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        cancelled.append("deaf")
        raise


async def start(pod: Pod) -> asyncio.Task[int]:
    run = asyncio.create_task(pod.run())
    await until(
        lambda: (
            pod.beans and all(b.state is BeanState.RUNNING for b in pod.beans) and pod.signal_handlers("SIGTERM") > 0
        )
    )
    return run


def test_stop_sends_sigterm_waits_stop_wait_time_then_cancels_the_rest() -> None:
    heard: list[dict[str, Any]] = []
    cancelled: list[str] = []

    async def main() -> tuple[int, float, Pod]:
        pod = Pod(stop_wait_time=0.3)
        pod.add_bean(polite, label="polite", heard=heard)
        pod.add_bean(deaf, label="deaf", cancelled=cancelled)
        run = await start(pod)
        began = time.monotonic()
        pod.stop()
        status = await run
        return status, time.monotonic() - began, pod

    status, elapsed, pod = arun(main())
    assert status == 0
    assert heard == [{"signal": "SIGTERM"}]
    assert cancelled == ["deaf"]
    polite_bean, deaf_bean = pod.beans
    assert polite_bean.state is BeanState.FINISHED
    assert deaf_bean.state is BeanState.CANCELLED
    assert pod.refused == []
    assert 0.3 <= elapsed < 2.5, elapsed


def test_stop_ends_early_when_every_bean_ends_on_the_signal() -> None:
    heard: list[dict[str, Any]] = []

    async def main() -> tuple[int, float]:
        pod = Pod(stop_wait_time=5)
        pod.add_bean(polite, heard=heard)
        pod.add_bean(polite, heard=heard)
        run = await start(pod)
        began = time.monotonic()
        pod.stop()
        return await run, time.monotonic() - began

    status, elapsed = arun(main())
    assert status == 0
    assert heard == [{"signal": "SIGTERM"}] * 2
    assert elapsed < 2.5, elapsed  # not the 5 s budget


def test_stop_with_sigint_sends_sigint() -> None:
    heard: list[dict[str, Any]] = []

    async def main() -> int:
        pod = Pod(stop_wait_time=5)
        pod.add_bean(polite, heard=heard)
        run = await start(pod)
        pod.stop("SIGINT")
        pod.stop("SIGTERM")  # a second request changes nothing
        return await run

    assert arun(main()) == 0
    assert heard == [{"signal": "SIGINT"}]


def test_stop_from_another_thread() -> None:
    heard: list[dict[str, Any]] = []

    async def main() -> int:
        pod = Pod(stop_wait_time=5)
        pod.add_bean(polite, heard=heard)
        run = await start(pod)
        await asyncio.to_thread(pod.stop)
        return await run

    assert arun(main()) == 0
    assert heard == [{"signal": "SIGTERM"}]


def test_stop_wait_time_none_waits_until_force_stop() -> None:
    cancelled: list[str] = []

    async def main() -> tuple[int, Bean]:
        pod = Pod(stop_wait_time=None)
        bean = pod.add_bean(deaf, cancelled=cancelled)
        heard: list[str] = []
        pod.add_signal_handler("SIGTERM", lambda **kw: heard.append(kw["signal"]))
        run = await start(pod)
        pod.stop()
        await until(lambda: heard and pod.phase == "stopping")
        # Past any deadline a test could wait for: the pod still waits, the bean still runs.
        done, _ = await asyncio.wait({run}, timeout=0.5)
        assert not done and bean.state is BeanState.RUNNING
        pod.force_stop()
        return await run, bean

    status, bean = arun(main())
    assert status == 0
    assert bean.state is BeanState.CANCELLED
    assert cancelled == ["deaf"]


def test_exit_status_is_one_when_a_bean_failed_before_the_stop() -> None:
    heard: list[dict[str, Any]] = []

    async def boom() -> None:
        raise OSError("disk full")

    async def main() -> tuple[int, Pod]:
        pod = Pod(stop_wait_time=1)
        pod.add_bean(boom, label="boom")
        pod.add_bean(polite, heard=heard)
        run = asyncio.create_task(pod.run())
        await until(lambda: pod.get_bean("boom").ended and pod.signal_handlers("SIGTERM") == 1)
        pod.stop()
        return await run, pod

    status, pod = arun(main())
    assert status == 1
    assert pod.exit_status == 1
    assert [b.state for b in pod.beans] == [BeanState.FAILED, BeanState.FINISHED]


def test_a_slow_stop_handler_is_cut_off_at_stop_wait_time() -> None:
    handler_cancelled: list[bool] = []

    async def slow_handler(**kwargs: Any) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            handler_cancelled.append(True)
            raise

    async def main() -> tuple[int, float]:
        pod = Pod(stop_wait_time=0.2)
        pod.add_bean(deaf, cancelled=[])
        pod.add_signal_handler("SIGTERM", slow_handler)
        run = await start(pod)
        began = time.monotonic()
        pod.stop()
        return await run, time.monotonic() - began

    status, elapsed = arun(main())
    assert status == 0
    assert handler_cancelled == [True]
    assert elapsed < 2.5, elapsed


def test_a_bean_that_swallows_cancellation_lands_in_refused(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(pod_module, "CANCEL_GRACE", 0.3)
    swallowed: list[int] = []
    released = False

    async def stubborn() -> None:
        while not released:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                swallowed.append(1)

    async def main() -> tuple[int, Pod, float]:
        nonlocal released
        pod = Pod(stop_wait_time=0)
        good = pod.add_bean(deaf, cancelled=[])
        pod.add_bean(stubborn, label="stubborn")
        run = asyncio.create_task(pod.run())
        await until(lambda: all(b.state is BeanState.RUNNING for b in pod.beans))
        began = time.monotonic()
        pod.stop()
        status = await run
        elapsed = time.monotonic() - began
        assert good.state is BeanState.CANCELLED
        released = True  # let asyncio.run's own cancellation end it
        return status, pod, elapsed

    status, pod, elapsed = arun(main())
    assert status == 1
    assert pod.exit_status == 1
    assert [b.label for b in pod.refused] == ["stubborn"]
    assert len(swallowed) >= 2  # cancelled again and again during the grace
    assert 0.3 <= elapsed < 2.5, elapsed
    assert any("refused to stop" in r.getMessage() and "stubborn" in r.getMessage() for r in caplog.records)
