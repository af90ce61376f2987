"""A pod that runs for months stays bounded: live beans plus a bounded history of ended ones."""

from __future__ import annotations

import asyncio
import gc
import traceback
import weakref
from pathlib import Path
from typing import Any

import pytest

from aiopod.pod import AmbiguousBean, BeanContext, BeanNotFound, BeanState, ConfigError, Pod, load, pass_context
from tests.proc import aiopod, run

from .helpers import arun


class Payload:
    """Something a bean's frame holds; it must not outlive the bean."""


async def job(i: int, alive: weakref.WeakSet[Payload]) -> int:
    payload = Payload()
    alive.add(payload)
    await asyncio.sleep(0)
    if i % 2:
        raise ValueError(f"job {i} failed")  # the frame (and `payload`) is in the traceback
    return i


def test_20k_short_beans_leave_only_the_history_behind() -> None:
    alive: weakref.WeakSet[Payload] = weakref.WeakSet()
    beans_seen: weakref.WeakSet[Any] = weakref.WeakSet()

    @pass_context
    async def producer(context: BeanContext) -> None:
        for i in range(20_000):
            beans_seen.add(context.pod.add_bean(job, label=f"job-{i}", i=i, alive=alive))
            if i % 500 == 0:
                await asyncio.sleep(0)

    async def main() -> Pod:
        pod = Pod(bean_history=50)
        pod.add_bean(producer, label="producer")
        assert await pod.run() == 1  # half of the jobs failed
        return pod

    pod = arun(main(), timeout=60)
    gc.collect()
    kept = pod.beans
    assert len(kept) == 50 and pod.live == 0
    assert [b.id for b in kept] == list(range(20_002 - 50, 20_002))  # the last 50 to end
    assert len(beans_seen) == 50  # every other bean record is gone
    assert len(alive) == 0  # no kept exception pins its frames' locals
    failed = [b for b in kept if b.state is BeanState.FAILED]
    assert failed and all(isinstance(b.exception, ValueError) for b in failed)
    # the kept traceback still says where it failed
    text = "".join(traceback.format_exception(failed[0].exception))
    assert "in job" in text and "raise ValueError" in text
    # labels of dropped beans are gone too
    with pytest.raises(BeanNotFound, match=r"no bean with label 'job-3'"):
        pod.get_beans("job-3")
    assert pod.get_beans("job-19999")[0].label == "job-19999"


def test_cancelled_and_dropped_beans_are_freed_without_the_collector() -> None:
    """A cancelled bean's task lets go of its frames, a dropped bean of its context: no cycle is left.

    100k beans stopped at once otherwise leave their records, tasks and frames to the
    collector, which the interpreter runs at exit: half a second (issue 15, item 9).
    """
    alive: weakref.WeakSet[Payload] = weakref.WeakSet()
    beans_seen: weakref.WeakSet[Any] = weakref.WeakSet()
    waiting = []

    @pass_context
    async def waiter(context: BeanContext) -> None:
        payload = Payload()  # a local of the frame the bean is cancelled in
        alive.add(payload)
        waiting.append(context.id)
        if len(waiting) == 100:
            context.pod.stop(0)  # cancel them all now
        await asyncio.Event().wait()

    async def main() -> Pod:
        pod = Pod(bean_history=10)
        for _ in range(100):
            beans_seen.add(pod.add_bean(waiter))
        assert await pod.run() == 0
        return pod

    gc.disable()
    try:
        pod = arun(main())
        kept = pod.beans
        assert [b.state for b in kept] == [BeanState.CANCELLED] * 10
        assert len(beans_seen) == 10  # the 90 dropped ones are gone, the collector never ran
        assert len(alive) == 0  # no cancelled task keeps the frames it was cancelled in
        assert kept[0].task is not None and kept[0].task.cancelled()
        with pytest.raises(asyncio.CancelledError):
            kept[0].task.result()
    finally:
        gc.enable()


def test_the_beans_a_pod_starts_with_are_freed_once_dropped_while_it_runs() -> None:
    first: weakref.WeakSet[Any] = weakref.WeakSet()
    kept_while_running = []

    async def quick() -> None:
        pass

    @pass_context
    async def watcher(context: BeanContext) -> None:
        await context.wait_beans_done("quick")
        gc.collect()
        kept_while_running.append(len(first))

    async def main() -> int:
        pod = Pod(bean_history=5)
        for _ in range(50):
            first.add(pod.add_bean(quick, label="quick"))
        pod.add_bean(watcher)
        return await pod.run()

    assert arun(main()) == 0
    assert kept_while_running == [5]  # the history's, not the 50 the pod started with


def test_a_dropped_bean_is_reported_as_ended_and_dropped_and_ids_are_not_reused() -> None:
    async def quick() -> None:
        pass

    async def main() -> Pod:
        pod = Pod(bean_history=2, keep_alive=True)
        task = asyncio.create_task(pod.run())
        for _ in range(5):
            await pod.add_bean(quick).wait()
        assert [b.id for b in pod.beans] == [4, 5]
        assert pod.add_bean(quick).id == 6  # ids go on from the highest ever given
        await pod.wait_idle()
        pod.stop()
        assert await task == 0
        return pod

    pod = arun(main())
    for ref in (1, "1"):
        with pytest.raises(BeanNotFound) as info:
            pod.get_beans(ref)
        assert str(info.value) == (
            "bean 1 ended and was dropped from the history, which keeps the last 2 ended beans; "
            "raise BEAN_HISTORY (--bean-history) to keep more"
        )
    with pytest.raises(BeanNotFound, match="no bean with id 99; there are ids 5-6"):
        pod.get_beans(99)


def test_live_beans_are_never_dropped_and_a_restarted_bean_leaves_the_history() -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    async def quick() -> None:
        pass

    async def main() -> list[int]:
        pod = Pod(bean_history=1, stop_wait_time=0.5)
        long_lived = pod.add_bean(forever, label="svc")
        task = asyncio.create_task(pod.run())
        first = pod.add_bean(quick, label="again")
        await first.wait()
        await pod.restart(first)  # live again: not in the history any more
        await first.wait()
        for _ in range(3):
            await pod.add_bean(quick).wait()
        ids = [b.id for b in pod.beans]
        assert long_lived.state is BeanState.RUNNING
        pod.stop()
        await task
        return ids

    assert arun(main()) == [1, 5]  # the live one, and the last ended one


def test_history_zero_keeps_only_live_beans() -> None:
    async def quick() -> None:
        pass

    async def main() -> Pod:
        pod = Pod(bean_history=0)
        for _ in range(10):
            pod.add_bean(quick)
        assert await pod.run() == 0
        return pod

    assert arun(main()).beans == []


def test_an_ambiguous_label_is_its_own_lookup_error() -> None:
    async def noop() -> None:
        pass

    pod = Pod()
    pod.add_bean(noop, label="w")
    pod.add_bean(noop, label="w")
    with pytest.raises(AmbiguousBean, match=r"2 beans have label 'w' \(ids 1, 2\); ask for one by id") as info:
        pod.get_bean("w")
    assert isinstance(info.value, LookupError) and not isinstance(info.value, BeanNotFound)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("-1", "BEAN_HISTORY -1 must be a whole number >= 0"),
        ("'many'", "BEAN_HISTORY 'many' must be a whole number >= 0"),
        ("2.5", "BEAN_HISTORY 2.5 must be a whole number >= 0"),
    ],
)
def test_a_bad_bean_history_is_one_clear_line(tmp_path: Path, value: str, problem: str) -> None:
    config = tmp_path / "pod.py"
    config.write_text(f"BEAN_HISTORY = {value}\n")
    with pytest.raises(ConfigError) as info:
        load(config, environ={})
    assert info.value.problems == [f"{config}: {problem} (how many ended beans to keep)"]


SPAWNER = """
import asyncio
from aiopod import pass_context

async def job(i):
    if i % 2:
        raise ValueError(i)

@pass_context
async def spawner(context, n):
    beans = [context.pod.add_bean(job, i=i) for i in range(int(n))]
    for bean in beans:
        await bean.wait()
    print("kept", [b.id for b in context.pod.beans if b.ended], flush=True)
"""


def test_bean_history_option_and_environment_bound_what_a_running_pod_keeps(tmp_path: Path) -> None:
    (tmp_path / "spawner.py").write_text(SPAWNER)
    code, out = run("run", "--bean-history", "3", "-l", "critical", "spawner.spawner:n=40", cwd=tmp_path)
    assert code == 1, out  # the failed jobs
    assert "kept [39, 40, 41]" in out, out
    code, out = run("run", "-l", "critical", "spawner.spawner:n=10", cwd=tmp_path, env={"AIOPOD_BEAN_HISTORY": "2"})
    assert "kept [10, 11]" in out, out
    with aiopod("run", "--bean-history", "-4", "spawner.spawner:n=1", cwd=tmp_path) as proc:
        assert proc.wait() == 2
    assert "-4" in proc.output and "--bean-history" in proc.output


def test_letting_go_of_a_failure_never_closes_a_task_that_caught_it_and_goes_on() -> None:
    """A worker that hands its errors to futures goes on; the bean that gets one fails."""
    jobs: asyncio.Queue[asyncio.Future[int]] = asyncio.Queue()
    handled: list[str] = []

    async def worker() -> None:
        while True:
            future = await jobs.get()
            try:
                raise ConnectionError(f"job {len(handled)} failed")
            except ConnectionError as exc:  # its frame is in the exception's traceback
                future.set_exception(exc)
            handled.append("x")

    async def client() -> None:
        future = asyncio.get_running_loop().create_future()
        await jobs.put(future)
        await future  # raises the worker's exception, with the worker's frame in it

    async def main() -> tuple[Pod, list[str]]:
        pod = Pod(keep_alive=True, stop_wait_time=0.5)
        task = asyncio.create_task(pod.run())
        serving = pod.add_bean(worker)
        first = pod.add_bean(client)
        await first.wait()
        assert first.state is BeanState.FAILED and isinstance(first.exception, ConnectionError)
        second = pod.add_bean(client)  # the worker still serves: it was not closed
        await second.wait()
        assert serving.state is BeanState.RUNNING
        pod.stop()
        await task
        return pod, handled

    pod, handled = arun(main())
    assert handled == ["x", "x"]
    assert pod.exit_status == 1  # the clients failed; the worker was cancelled at the stop
