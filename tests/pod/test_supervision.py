"""Restart policies, restart(), reload() and load(): the pod changing while it runs.

The policy tests run ``aiopod run`` in a subprocess with real signals; the live-change
tests drive a real ``Pod`` on a real loop, with bean modules written under tmp_path.
"""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aiopod.pod import Bean, BeanContext, BeanState, ConfigError, Pod, PodStateError, pass_context
from tests.proc import aiopod, run

from .helpers import arun, until

Write = Callable[[str, str], Path]

FLAKY = """
    import asyncio

    attempts = 0

    async def fails_once():
        global attempts
        attempts += 1
        print(f"attempt {attempts}", flush=True)
        if attempts == 1:
            raise RuntimeError("first attempt fails")
        print("succeeded", flush=True)

    async def always_fails():
        global attempts
        attempts += 1
        print(f"attempt {attempts}", flush=True)
        raise RuntimeError(f"attempt {attempts} fails")

    async def returns():
        global attempts
        attempts += 1
        print(f"attempt {attempts}", flush=True)

    async def runs_forever():
        global attempts
        attempts += 1
        print(f"attempt {attempts}", flush=True)
        await asyncio.Event().wait()
"""


def config(write: Write, core: str, restart: Any) -> None:
    write("flaky.py", FLAKY)
    write("cfg.py", f"BEANS = [{{'core': {core!r}, 'label': 'flaky', 'restart': {restart!r}}}]\n")


# -- policies, in a real process -----------------------------------------------------------


def test_on_failure_restarts_a_failed_bean_which_then_succeeds(write: Write, tmp_path: Path) -> None:
    config(write, "flaky.fails_once", {"policy": "on-failure", "backoff": 0.01})
    code, out = run("run", "-c", "cfg.py", cwd=tmp_path)
    assert code == 0, out
    assert "attempt 1" in out and "attempt 2" in out and "attempt 3" not in out
    assert "RuntimeError: first attempt fails" in out
    assert "restarting flaky (1/5) in 0.0 s" in out
    assert out.index("restarting flaky (1/5)") < out.index("attempt 2") < out.index("succeeded")


def test_on_failure_gives_up_after_max_restarts(write: Write, tmp_path: Path) -> None:
    config(write, "flaky.always_fails", {"policy": "on-failure", "max": 2, "backoff": 0.01})
    code, out = run("run", "-c", "cfg.py", cwd=tmp_path)
    assert code == 1, out
    assert [line for line in out.splitlines() if line.startswith("attempt")] == ["attempt 1", "attempt 2", "attempt 3"]
    assert "restarting flaky (1/2)" in out and "restarting flaky (2/2)" in out
    assert "restarting flaky (3/2)" not in out
    assert "failed 3 times within 60 s: giving up (restart max=2)" in out
    assert "RuntimeError: attempt 3 fails" in out
    assert "RuntimeError: attempt 3 fails" in out


def test_always_restarts_a_bean_that_returned(write: Write, tmp_path: Path) -> None:
    config(write, "flaky.returns", {"policy": "always", "max": 2, "backoff": 0.01})
    code, out = run("run", "-c", "cfg.py", cwd=tmp_path)
    assert [line for line in out.splitlines() if line.startswith("attempt")] == ["attempt 1", "attempt 2", "attempt 3"]
    assert "restarting flaky (2/2)" in out
    assert "ended 3 times within 60 s: giving up (restart max=2)" in out
    assert code == 1, out  # the budget is spent: the bean is failed


def test_on_failure_does_not_restart_a_bean_that_returned(write: Write, tmp_path: Path) -> None:
    config(write, "flaky.returns", {"policy": "on-failure", "backoff": 0.01})
    code, out = run("run", "-c", "cfg.py", cwd=tmp_path)
    assert code == 0, out
    assert "attempt 1" in out and "attempt 2" not in out
    assert "restarting" not in out


def test_sigterm_stops_a_running_always_bean_without_restarting_it(write: Write, tmp_path: Path) -> None:
    config(write, "flaky.runs_forever", {"policy": "always", "backoff": 0.01})
    with aiopod("run", "-c", "cfg.py", "--stop-wait-time", "0.2", cwd=tmp_path) as proc:
        proc.wait_for("attempt 1")
        sent = proc.signal(signal.SIGTERM)
        code = proc.wait(10)
        elapsed = time.monotonic() - sent
    assert code == 0, proc.output
    assert elapsed < 3, elapsed
    assert "attempt 2" not in proc.output
    assert "restarting" not in proc.output


def test_sigterm_during_the_backoff_cancels_the_pending_restart(write: Write, tmp_path: Path) -> None:
    config(write, "flaky.always_fails", {"policy": "on-failure", "backoff": 30})
    with aiopod("run", "-c", "cfg.py", cwd=tmp_path) as proc:
        proc.wait_for("restarting flaky (1/5) in 30.0 s")
        sent = proc.signal(signal.SIGTERM)
        code = proc.wait(10)
        elapsed = time.monotonic() - sent
    assert code == 0, proc.output  # stopped by SIGTERM while waiting to restart
    assert elapsed < 3, elapsed
    assert "attempt 2" not in proc.output


def test_a_bean_failing_while_the_pod_stops_is_not_restarted(write: Write, tmp_path: Path) -> None:
    write(
        "stopfail.py",
        """
        import asyncio
        from aiopod import pass_context

        @pass_context
        async def bean(context):
            stop = asyncio.Event()
            await context.add_signal_handler("SIGTERM", lambda **kw: stop.set())
            print(f"attempt {context.bean.restarts + 1}", flush=True)
            await stop.wait()
            raise RuntimeError("failed while stopping")
        """,
    )
    write("cfg.py", "BEANS = [{'core': 'stopfail.bean', 'label': 'sf', 'restart': 'always'}]\n")
    with aiopod("run", "-c", "cfg.py", cwd=tmp_path) as proc:
        proc.wait_for("attempt 1")
        proc.signal(signal.SIGTERM)
        code = proc.wait(10)
    # Logged and shown as failed, but it does not change the exit status: once the stop has
    # begun a supervised bean that fails is one that would have been restarted (README "Stopping").
    assert code == 0, proc.output
    assert "RuntimeError: failed while stopping" in proc.output
    assert "attempt 2" not in proc.output and "restarting" not in proc.output


# -- the same bean across restarts, in process ---------------------------------------------


def test_a_restarted_bean_keeps_its_id_and_counts_restarts() -> None:
    seen: list[tuple[int | None, int, BeanState]] = []

    @pass_context
    async def flaky(context: BeanContext) -> str:
        assert context.bean is not None
        seen.append((context.id, context.bean.restarts, context.bean.state))
        if len(seen) < 3:
            raise RuntimeError(f"run {len(seen)}")
        return "ok"

    pod = Pod()
    pod.add_bean(_noop(), label="first")  # so the flaky bean is not #1
    bean = pod.add_bean(flaky, label="flaky", restart={"policy": "on-failure", "backoff": 0})
    assert arun(pod.run()) == 0
    assert seen == [(2, 0, BeanState.RUNNING), (2, 1, BeanState.RUNNING), (2, 2, BeanState.RUNNING)]
    assert pod.beans == [pod.get_bean("first"), bean]
    assert (bean.id, bean.restarts, bean.state) == (2, 2, BeanState.FINISHED)
    assert bean.exception is not None and str(bean.exception) == "run 2"  # the last failure is kept


def _noop() -> Any:
    async def noop() -> None:
        pass

    return noop()


def test_bean_wait_covers_restarts() -> None:
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("again")

    async def main() -> None:
        pod = Pod()
        bean = pod.add_bean(flaky, restart={"policy": "on-failure", "backoff": 0})
        task = asyncio.create_task(pod.run())
        await until(lambda: bean.started_at is not None)
        await pod.wait_beans_done(bean.id)
        assert len(runs) == 3 and bean.state is BeanState.FINISHED
        assert await task == 0

    arun(main())


def test_cancel_during_the_restart_backoff_ends_the_bean() -> None:
    async def crash() -> None:
        raise RuntimeError("crash")

    async def main() -> tuple[int, Bean]:
        pod = Pod()
        bean = pod.add_bean(crash, restart={"policy": "on-failure", "backoff": 30})
        task = asyncio.create_task(pod.run())
        await until(lambda: bean.state is BeanState.RESTARTING)
        assert pod.cancel(bean.id) == [bean]
        return await task, bean

    status, bean = arun(main(), timeout=5)
    assert status == 0
    assert (bean.state, bean.restarts) == (BeanState.CANCELLED, 0)
    assert str(bean.exception) == "crash"


def test_restart_during_the_backoff_starts_the_bean_now() -> None:
    runs: list[int] = []

    async def crash_once() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("crash")

    async def keeper(done: asyncio.Event) -> None:
        await done.wait()

    async def main() -> Bean:
        done = asyncio.Event()
        pod = Pod()
        bean = pod.add_bean(crash_once, restart={"policy": "on-failure", "backoff": 30})
        pod.add_bean(keeper, done=done)
        task = asyncio.create_task(pod.run())
        await until(lambda: bean.state is BeanState.RESTARTING)
        await pod.restart(bean)
        await pod.wait_beans_done(bean)
        done.set()
        assert await task == 0
        return bean

    bean = arun(main(), timeout=5)
    assert len(runs) == 2
    assert (bean.state, bean.restarts, bean.exception) == (BeanState.FINISHED, 1, None)


# -- restart(), reload(), load() on a live pod ---------------------------------------------

SERVICE = """
    import asyncio

    VERSION = {version}

    async def serve(reports, **kwargs):
        reports.put_nowait(VERSION)
        await asyncio.Event().wait()

    async def job(reports, **kwargs):
        reports.put_nowait(("job", VERSION))
"""


def edit(path: Path, source: str) -> None:
    """Rewrite a module as an editor would; a later mtime so a stale .pyc is never used."""
    stat = path.stat()
    path.write_text(textwrap.dedent(source))
    os.utime(path, (stat.st_atime + 2, stat.st_mtime + 2))


async def live_pod(*beans: tuple[str, str], **kwargs: Any) -> tuple[Pod, asyncio.Task[int], asyncio.Queue[Any]]:
    """A running pod with ``(core, label)`` beans, each given the same ``reports`` queue."""
    reports: asyncio.Queue[Any] = asyncio.Queue()
    pod = Pod(stop_wait_time=0, **kwargs)
    for core, label in beans:
        pod.add_bean(core, label=label, reports=reports)
    task = asyncio.create_task(pod.run())
    await until(lambda: all(b.state is BeanState.RUNNING or b.ended for b in pod.beans))
    return pod, task, reports


def test_restart_runs_the_bean_again_with_the_same_id(module: Write) -> None:
    module("svc", SERVICE.format(version=1))

    async def main() -> None:
        pod, task, reports = await live_pod(("svc.serve", "svc"), ("svc.job", "job"))
        assert sorted(map(str, [await reports.get(), await reports.get()])) == ["('job', 1)", "1"]
        svc, job = pod.beans
        old_task = svc.task
        assert await pod.restart("svc") == [svc]
        assert await reports.get() == 1
        assert (svc.id, svc.restarts, svc.state) == (1, 1, BeanState.RUNNING)
        assert svc.task is not old_task and old_task is not None and old_task.cancelled()
        # a finished bean can be started again too
        await pod.wait_beans_done("job")
        assert await pod.restart(2) == [job]
        assert await reports.get() == ("job", 1)
        await pod.wait_beans_done("job")
        assert (job.id, job.restarts, job.state) == (2, 1, BeanState.FINISHED)
        pod.stop()
        assert await task == 0

    arun(main())


def test_restart_needs_a_running_pod_and_a_restartable_bean() -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    pod = Pod()
    pod.add_bean(forever, label="f")
    with pytest.raises(PodStateError, match="the pod is not running"):
        arun(pod.restart("f"))

    async def main() -> None:
        pod = Pod(stop_wait_time=0)
        once = pod.add_bean(forever(), label="once")
        task = asyncio.create_task(pod.run())
        await until(lambda: once.state is BeanState.RUNNING)
        with pytest.raises(PodStateError, match="is a coroutine object, which can run only once"):
            await pod.restart("once")
        assert once.state is BeanState.RUNNING and once.restarts == 0
        pod.stop()
        await task

    arun(main())


def test_reload_from_the_test_picks_up_the_edited_module_and_keeps_the_id(module: Write) -> None:
    path = module("svc", SERVICE.format(version=1))

    async def main() -> None:
        pod, task, reports = await live_pod(("svc.serve", "svc"))
        assert await reports.get() == 1
        (bean,) = pod.beans
        edit(path, SERVICE.format(version=22))
        assert await pod.reload("svc") == [bean]
        assert await reports.get() == 22
        assert (bean.id, bean.label, bean.restarts, bean.state) == (1, "svc", 1, BeanState.RUNNING)
        assert pod.get_bean("svc") is bean and len(pod.beans) == 1
        pod.stop()
        assert await task == 0

    arun(main())


def test_reload_from_another_bean(module: Write) -> None:
    path = module("svc", SERVICE.format(version=1))
    outcome: list[Any] = []

    @pass_context
    async def admin(context: BeanContext, reports: asyncio.Queue[Any], go: asyncio.Event) -> None:
        await go.wait()
        beans = await context.pod.reload("svc")
        outcome.append([(b.id, b.restarts) for b in beans])

    async def main() -> None:
        reports: asyncio.Queue[Any] = asyncio.Queue()
        go = asyncio.Event()
        pod = Pod(stop_wait_time=0)
        pod.add_bean("svc:serve", label="svc", reports=reports)
        pod.add_bean(admin, label="admin", reports=reports, go=go)
        task = asyncio.create_task(pod.run())
        assert await reports.get() == 1
        edit(path, SERVICE.format(version=2))
        go.set()
        assert await reports.get() == 2
        await pod.wait_beans_done("admin")
        assert outcome == [[(1, 1)]]
        pod.stop()
        assert await task == 0

    arun(main())


def test_reload_with_a_syntax_error_leaves_the_running_bean_alone(module: Write) -> None:
    path = module("svc", SERVICE.format(version=1))

    async def main() -> None:
        pod, task, reports = await live_pod(("svc.serve", "svc"))
        assert await reports.get() == 1
        (bean,) = pod.beans
        running = bean.task
        edit(path, "import asyncio\n\nasync def serve(reports:\n    pass\n")
        with pytest.raises(ConfigError) as info:
            await pod.reload("svc")
        (problem,) = info.value.problems
        assert problem.startswith(f"{path}:3: syntax error:"), problem
        assert bean.task is running and not running.done()
        assert (bean.state, bean.restarts) == (BeanState.RUNNING, 0)
        assert reports.empty()
        # once fixed, the reload goes through
        edit(path, SERVICE.format(version=3))
        await pod.reload("svc")
        assert await reports.get() == 3
        pod.stop()
        assert await task == 0

    arun(main())


def test_reload_with_an_error_at_import_raises_config_error(module: Write) -> None:
    path = module("svc", SERVICE.format(version=1))

    async def main() -> None:
        pod, task, reports = await live_pod(("svc.serve", "svc"))
        assert await reports.get() == 1
        (bean,) = pod.beans
        edit(path, "VERSION = undefined_name\n")
        with pytest.raises(ConfigError, match=r"reloading 'svc' failed: NameError: name 'undefined_name'"):
            await pod.reload("svc")
        assert (bean.state, bean.restarts) == (BeanState.RUNNING, 0)
        pod.stop()
        assert await task == 0

    arun(main())


LOADED = """
    import asyncio

    async def hello(reports, **kwargs):
        reports.put_nowait(("hello", kwargs))
        await asyncio.Event().wait()
"""


def test_load_starts_the_beans_and_merges_the_keys(module: Write, write: Write) -> None:
    module("svc", SERVICE.format(version=1))
    module("second", LOADED)

    async def main() -> None:
        pod, task, reports = await live_pod(("svc.serve", "svc"))
        assert await reports.get() == 1
        pod.config.update({"LOG_LEVEL": "INFO", "KEPT": "old"})
        config_path = write(
            "second_config.py",
            """
            import asyncio
            EXTRA = "extra"
            KEPT = "new"
            STOP_WAIT_TIME = 4
            lower = "not config"
            REPORTS = asyncio.Queue()
            BEANS = [{"core": "second.hello", "label": "second", "x": 1, "reports": REPORTS}]
            """,
        )
        (added,) = pod.load(str(config_path))
        assert (added.id, added.label, added.state) == (2, "second", BeanState.RUNNING)
        assert pod.config.EXTRA == "extra"
        assert pod.config.KEPT == "new"
        assert pod.config.LOG_LEVEL == "INFO"  # the file does not set it
        assert (pod.config.STOP_WAIT_TIME, pod.stop_wait_time) == (4.0, 4.0)  # applied at once (tests/pod/test_load.py)
        assert "BEANS" not in pod.config and "lower" not in pod.config
        reports2 = pod.config.REPORTS
        assert await reports2.get() == ("hello", {"x": 1})
        pod.stop()
        assert await task == 0
        assert added.state is BeanState.CANCELLED

    arun(main())


@pytest.mark.parametrize(
    "source",
    [
        "EXTRA = 1\nBEANS = [\n",
        "EXTRA = 1\nBEANS = [{'core': 'second.hello', 'label': 'ok'}, {'core': 'nosuch_mod_xyz.f'}]\n",
        "EXTRA = 1\nBEANS = [{'core': 'second.hello'}, {'label': 'no core'}]\n",
        "EXTRA = 1\nBEANS = [{'core': 'second.hello', 'restart': 'sometimes'}]\n",
        "EXTRA = 1\nBEANS = {'core': 'second.hello'}\n",
        "EXTRA = 1\nBEANS = ['second.hello']\n",
    ],
    ids=["syntax", "unknown-module", "no-core", "bad-restart", "beans-not-a-list", "entry-not-a-dict"],
)
def test_load_of_a_bad_file_changes_nothing(module: Write, write: Write, source: str) -> None:
    module("svc", SERVICE.format(version=1))
    module("second", LOADED)
    bad = write("bad_config.py", source)

    async def main() -> None:
        pod, task, reports = await live_pod(("svc.serve", "svc"))
        assert await reports.get() == 1
        before = dict(pod.config)
        with pytest.raises(ConfigError) as info:
            pod.load(str(bad))
        assert all(str(bad) in problem for problem in info.value.problems), info.value.problems
        assert dict(pod.config) == before
        assert [b.label for b in pod.beans] == ["svc"]
        pod.stop()
        assert await task == 0

    arun(main())


def test_load_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        Pod().load(str(tmp_path / "missing.py"))


def test_loaded_beans_wait_for_a_pod_that_is_not_running_yet(module: Write, write: Write) -> None:
    module("second", LOADED)
    config_path = write("cfg.py", "BEANS = [{'core': 'second.hello', 'reports': None}]\n")
    pod = Pod()
    (bean,) = pod.load(str(config_path))
    assert bean.state is BeanState.PENDING
    assert isinstance(bean, Bean)
