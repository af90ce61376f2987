"""``aiopod shell`` driven through a real pseudo-terminal with pexpect."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.console._pty import TICKER, Console, shell_argv, shell_environment, ticks, wait_until

BEANS = (
    TICKER
    + """
from aiopod import pass_context

@pass_context
async def worker(context, **kw):
    async def hello(signal, who="?", **kw):
        return "hi " + who
    async def on_stop(signal, **kw):
        print("worker got " + signal, flush=True)
    await context.add_signal_handler("hello", hello)
    await context.add_signal_handler("SIGTERM", on_stop)
    await context.add_signal_handler("SIGINT", on_stop)
    while True:
        await asyncio.sleep(3600)

async def boom(**kw):
    raise ValueError("boom from bean")

async def short(**kw):
    await asyncio.sleep(0.2)
    print("short " + "done", flush=True)
"""
)


class Shell(Console):
    """One ``aiopod shell`` session in a pseudo-terminal, at its first prompt."""

    def __init__(self, cwd: Path, *args: str) -> None:
        super().__init__(shell_argv(*args), cwd, shell_environment(), timeout=15)
        self.prompt()


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Callable[..., Shell]]:
    (tmp_path / "beans.py").write_text(BEANS)
    sessions: list[Shell] = []

    def start(*args: str) -> Shell:
        sessions.append(Shell(tmp_path, *args))
        return sessions[-1]

    yield start
    for session in sessions:
        session.close()


def test_beans_keep_ticking_while_the_prompt_waits(shell: Callable[..., Shell], tmp_path: Path) -> None:
    tick_file = tmp_path / "ticks.txt"
    sh = shell(f"beans.ticker:path={tick_file}")
    wait_until(lambda: ticks(tick_file) >= 50, 10, "50 ticks of 10 ms while nobody types")
    sh.child.sendeof()
    assert sh.exit_status() == 0


def test_namespace_helpers(shell: Callable[..., Shell], tmp_path: Path) -> None:
    sh = shell(f"beans.ticker:path={tmp_path / 't.txt'}")
    out = sh.run("ps()", "running")
    assert "beans.ticker" in out
    sh.run("w = add('beans.worker', label='work' + 'er')", None)
    sh.run("print(bean('worker').state)", "run" + "ning")
    out = sh.run("await signal('hello', 'worker', who='Oz' + 'zy')", "hi " + "Ozzy")
    assert "1 handlers ran" in out
    sh.run("where('worker')", "in " + "worker")
    sh.run("cancel('worker')[0].id", "2")
    sh.run("await wait('worker')", "can" + "celled")
    sh.run("ps()", "can" + "celled")
    sh.run("h()", "hot-add a " + "bean")
    (tmp_path / "more.py").write_text("EXTRA = 7\nBEANS = [{'core': 'beans.short', 'label': 'short'}]\n")
    sh.run("load('more.py')", "short " + "done")
    sh.run("config.EXTRA * 6", "42")
    sh.run("restart('short')", "short " + "done")
    sh.run("bean('short').restarts + 100", "101")
    sh.child.sendline("stop()")
    assert sh.exit_status() == 0


def test_reload_picks_up_edited_code(
    shell: Callable[..., Shell], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # the pod caches hot.py's bytecode
    (tmp_path / "hot.py").write_text("async def main(**kw):\n    print('version ' + '1', flush=True)\n")
    sh = shell("hot.main")
    sh.run("ps()", "finished")
    # The same size and mtime as version 1, as an edit saved within the second of its compile:
    # Python's bytecode cache alone would take the file as unchanged.
    first = (tmp_path / "hot.py").stat()
    (tmp_path / "hot.py").write_text("async def main(**kw):\n    print('version ' + '2', flush=True)\n")
    os.utime(tmp_path / "hot.py", ns=(first.st_atime_ns, first.st_mtime_ns))
    sh.run("reload(1)", "version 2")
    (tmp_path / "hot.py").write_text("async def main(**kw)\n    pass\n")
    sh.run("reload(1)", "syntax " + "error")
    sh.run("print(bean(1).id, 'id' + 'ok')", "1 idok")
    sh.child.sendline("exit()")
    assert sh.exit_status() == 0


def test_top_level_await_and_ctrl_c_cancels_only_the_statement(shell: Callable[..., Shell], tmp_path: Path) -> None:
    sh = shell(f"beans.ticker:path={tmp_path / 't.txt'}")
    sh.run("await asyncio.sleep(0.1) or 6 * 7", "42")
    sh.child.sendline("print('sleep' + 'ing'); await asyncio.sleep(60)")
    sh.child.expect_exact("sleeping")  # the statement is running
    sh.child.sendintr()
    sh.child.expect_exact("KeyboardInterrupt")
    sh.prompt()
    sh.run("print(bean(1).state.value + '!')", "running!")
    # Ctrl-C at the prompt clears the line and never stops the pod
    sh.child.send("1 + ")
    sh.child.sendintr()
    sh.prompt()
    sh.run("print('still ' + 'here')", "still here")
    sh.child.sendeof()
    assert sh.exit_status() == 0


def test_mistakes_print_and_return_to_the_prompt(shell: Callable[..., Shell], tmp_path: Path) -> None:
    sh = shell(f"beans.ticker:path={tmp_path / 't.txt'}")
    sh.run("1 / 0", "ZeroDivision" + "Error")
    sh.run("cancel('nope')", "no bean with label 'no" + "pe'")
    sh.run("add('nomod.fn')", "no module named 'no" + "mod'")
    (tmp_path / "broken.py").write_text("BEANS = [\n")
    sh.run("load('broken.py')", "broken.py:" + "1")
    sh.run("print(bean(1).state.value + '?')", "running?")
    sh.child.sendline("exit()")
    assert sh.exit_status() == 0


def test_failed_bean_makes_exit_status_1(shell: Callable[..., Shell]) -> None:
    sh = shell("beans.boom")
    sh.run("print(bean(1).state.value + '.')", "failed.")
    sh.child.sendeof()
    assert sh.exit_status() == 1


def test_sigterm_to_the_shell_stops_the_pod_after_console_statements(shell: Callable[..., Shell]) -> None:
    sh = shell("beans.worker")
    for i in range(3):  # ptpython would swap SIGINT handlers around each of these
        sh.run(f"print({i} + 100)", str(i + 100))
    sh.child.kill(signal.SIGTERM)
    sh.child.expect_exact("worker got SIGTERM")
    assert sh.exit_status() == 0


def test_sigint_stops_the_pod_when_no_statement_runs(shell: Callable[..., Shell]) -> None:
    sh = shell("beans.worker")
    sh.run("print(1 + 1)", "2")
    os.kill(sh.child.pid, signal.SIGINT)  # from outside, as `kill -INT` would
    sh.child.expect_exact("worker got SIGINT")
    assert sh.exit_status() == 0


def test_history_persists_across_sessions(tmp_path: Path) -> None:
    (tmp_path / "beans.py").write_text(BEANS)
    env = {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm", "XDG_STATE_HOME": str(tmp_path / "state")}
    for statement in ("first_value = 6 * 7", "second_value = 7 * 6"):
        console = Console([sys.executable, "-m", "aiopod", "shell"], tmp_path, env, timeout=15)  # history on
        console.prompt()
        console.run(statement)
        console.child.sendeof()
        assert console.exit_status() == 0
    history = (tmp_path / "state" / "aiopod" / "history").read_text()
    assert "first_value = 6 * 7" in history and "second_value = 7 * 6" in history


def test_the_readme_demo_console_starts_answers_and_exits() -> None:
    """The quick start's first command: ``cd examples && aiopod shell -c demo.py``."""
    examples = Path(__file__).resolve().parents[2] / "examples"
    sh = Shell(examples, "-c", "demo.py")
    try:
        sh.run("await signal('greet', 'greeter', who='y' + 'ou')", "Hello, " + "you!")
        out = sh.run("ps()", "demo_beans." + "Counter")
        assert "counter" in out and "flaky" in out
        sh.run("bean('counter').instance.count > 0", "True")
        sh.child.sendeof()
        assert sh.exit_status() == 0
    finally:
        sh.close()
