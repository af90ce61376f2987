"""Measurements that need a fresh interpreter; run as ``python -m benchmarks._worker CASE ARGS``.

Each case prints one JSON line with what it measured. Only the work itself is timed:
the interpreter start and the imports are not.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop  # type: ignore[no-any-return]
    return asyncio.new_event_loop


_done = 0


async def trivial() -> None:
    global _done
    _done += 1


def spawn(kind: str, loop: str, n: str, monitor: str = "monitor") -> dict[str, Any]:
    """Run ``n`` trivial beans from a config file (or tasks) to completion; seconds taken.

    The pod side is what ``aiopod run -c pod.py`` does once the process has started: read
    the config, add its beans, run the pod (signals, deadline and monitor included).
    """
    from aiopod.pod import load, run_pod

    count = int(n)
    factory = _loop_factory(loop)
    if kind == "pod":
        folder = tempfile.mkdtemp(prefix="aiopod-bench-")
        config = os.path.join(folder, "pod.py")
        with open(config, "w") as file:
            file.write(f"BEANS = [{{'core': 'benchmarks._worker:trivial'}} for _ in range({count})]\n")
            file.write(f"LOOP_TYPE = {loop!r}\nLOG_LEVEL = 'WARNING'\nWATCHDOG = {monitor == 'monitor'}\n")
        gc.collect()
        started, cpu_started = time.perf_counter(), time.process_time()
        status = run_pod(load(config))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        shutil.rmtree(folder)
        done = sys.modules["benchmarks._worker"]._done  # the config imported this file as a module
        if status != 0 or done != count:
            raise RuntimeError(f"pod ended with status {status} and {done}/{count} beans finished")
    else:

        async def main() -> None:
            tasks = [asyncio.create_task(trivial()) for _ in range(count)]
            await asyncio.gather(*tasks)

        gc.collect()
        started, cpu_started = time.perf_counter(), time.process_time()
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main())
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {"seconds": elapsed, "cpu": cpu}


def _maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def rss(kind: str, n: str) -> dict[str, Any]:
    """Peak RSS growth (KiB) while ``n`` beans (or tasks) wait on an Event, over the process so far."""
    from aiopod.pod import Pod

    count = int(n)

    async def main() -> dict[str, Any]:
        event = asyncio.Event()
        all_waiting = asyncio.Event()
        waiting = 0

        async def waiter() -> None:
            nonlocal waiting
            waiting += 1
            if waiting == count:
                all_waiting.set()
            await event.wait()

        gc.collect()
        baseline = _maxrss_kib()  # interpreter + imports + a running loop
        done: asyncio.Future[Any]
        if kind == "pod":
            pod = Pod()
            for _ in range(count):
                pod.add_bean(waiter)
            done = asyncio.ensure_future(pod.run())
        else:
            tasks = [asyncio.create_task(waiter()) for _ in range(count)]
            done = asyncio.ensure_future(asyncio.gather(*tasks))
        await all_waiting.wait()
        peak = _maxrss_kib()
        event.set()
        await done
        return {"kib": peak - baseline, "baseline_kib": baseline, "peak_kib": peak}

    return asyncio.run(main())


def fanout(kind: str, mode: str, n: str, reps: str) -> dict[str, Any]:
    """Median seconds to deliver one signal to ``n`` handlers: ``send_signal`` or a plain loop/gather."""
    from aiopod.pod import Pod

    count = int(n)
    calls = 0

    def make_sync() -> Callable[..., Any]:
        def handler(signal: str, **kwargs: Any) -> int:
            nonlocal calls
            calls += 1
            return calls

        return handler

    def make_async() -> Callable[..., Any]:
        async def handler(signal: str, **kwargs: Any) -> int:
            nonlocal calls
            calls += 1
            return calls

        return handler

    handlers = [make_sync() if mode == "sync" else make_async() for _ in range(count)]
    pod = Pod()  # registered in both variants, so both processes hold the same objects
    for handler in handlers:
        pod.add_signal_handler("x", handler)

    async def direct() -> list[Any]:
        if mode == "sync":
            return [handler(signal="x") for handler in handlers]
        coroutines: list[Coroutine[Any, Any, Any]] = [handler(signal="x") for handler in handlers]
        return await asyncio.gather(*coroutines)

    async def main() -> list[float]:
        times = []
        for _ in range(int(reps)):
            started = time.perf_counter()
            if kind == "pod":
                results: Sequence[Any] = await pod.send_signal("x")
            else:
                results = await direct()
            times.append(time.perf_counter() - started)
            if len(results) != count:
                raise RuntimeError(f"{len(results)} results for {count} handlers")
        return times

    times = asyncio.run(main())
    if calls != count * int(reps):
        raise RuntimeError(f"{calls} calls, expected {count * int(reps)}")
    return {"seconds": statistics.median(times)}


def heartbeat(interval: str, window: str) -> dict[str, Any]:
    """The worst gap of a bare asyncio heartbeat over ``window`` s, minus ``interval``: the machine's floor."""
    every, length = float(interval), float(window)

    async def main() -> float:
        await asyncio.sleep(0.3)  # as the console rows: the window starts once the process has settled
        worst = 0.0
        last = started = time.monotonic()
        while last - started < length:
            await asyncio.sleep(every)
            now = time.monotonic()
            worst, last = max(worst, now - last), now
        return worst - every

    return {"seconds": asyncio.run(main())}


def _rss_kib() -> int:
    """Resident set size now (not the peak), KiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def churn(kind: str, n: str, step: str) -> dict[str, Any]:
    """``n`` short beans (or tasks with a done callback) added ``step`` per loop turn, a tenth
    of them failing: CPU seconds of the whole run, and RSS after the first 10k and at the end.

    The pod side is ``context.pod.add_bean(job(i))`` in a pod with the default history;
    the other side is ``create_task`` plus a done callback that retrieves the outcome
    (and a set that keeps a strong reference to each task, as asyncio asks).
    """
    from aiopod.pod import Pod

    count, per_turn = int(n), int(step)

    async def job(i: int) -> int:
        if i % 10 == 0:
            raise ValueError(f"job {i} failed")
        return i

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[int]] = set()
        outcomes = {"ok": 0, "failed": 0}

        all_done = asyncio.Event()

        def done(task: asyncio.Task[int]) -> None:
            tasks.discard(task)
            outcomes["failed" if task.exception() is not None else "ok"] += 1
            if sum(outcomes.values()) == count:
                all_done.set()

        pod = Pod(keep_alive=True)
        running = asyncio.ensure_future(pod.run()) if kind == "pod" else None
        await asyncio.sleep(0)
        rss_10k = 0
        cpu_started = time.process_time()
        for first in range(0, count, per_turn):
            for i in range(first, first + per_turn):
                if kind == "pod":
                    pod.add_bean(job(i))
                else:
                    task = loop.create_task(job(i))
                    tasks.add(task)
                    task.add_done_callback(done)
            await asyncio.sleep(0)
            if first + per_turn == 10_000:
                rss_10k = _rss_kib()
        if kind == "pod":
            await pod.wait_idle()
        else:
            await all_done.wait()
        cpu = time.process_time() - cpu_started
        rss_end = _rss_kib()
        if kind == "pod":
            pod.stop()
            assert running is not None
            status = await running
            kept = len(pod.beans)
            if status != 1 or kept != pod.bean_history:
                raise RuntimeError(f"pod exited {status} keeping {kept} beans")
        elif outcomes != {"ok": count - count // 10, "failed": count // 10}:
            raise RuntimeError(f"outcomes {outcomes}")
        return {"cpu": cpu, "per_bean_us": cpu / count * 1e6, "rss_10k_kib": rss_10k, "rss_end_kib": rss_end}

    return asyncio.run(main())


CASES: dict[str, Callable[..., dict[str, Any]]] = {
    "churn": churn,
    "spawn": spawn,
    "rss": rss,
    "fanout": fanout,
    "heartbeat": heartbeat,
}


def main(argv: list[str]) -> None:
    case, *args = argv
    print(json.dumps(CASES[case](*args)), flush=True)
    # Freeing 100k beans one by one at exit measures nothing and costs seconds per worker.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
