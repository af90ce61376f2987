"""The evaluator, as a front end in another thread uses it, in a real pod process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# A pod whose guest drives one session from a thread, the way a console front end does,
# and writes what it saw as JSON lines to results.jsonl.
SCRIPT = """
import asyncio, json, sys, threading, time
from aiopod.pod import load, run_pod
from aiopod.console.evaluator import Evaluator
from aiopod.console.namespace import build_namespace

ticks = 0

async def ticker(**kw):
    global ticks
    while True:
        ticks += 1
        await asyncio.sleep(0.005)

async def chatty(**kw):
    while True:
        print("bean " + "line", flush=True)
        await asyncio.sleep(0.05)

def report(**fields):  # a file of its own: a bean's print could land inside a line on stdout
    with open("results.jsonl", "a") as f:
        f.write(json.dumps(fields) + "\\n")

async def guest(pod):
    pod.add_bean(ticker, "ticker")
    pod.add_bean(chatty, "chatty")
    evaluator = Evaluator.for_pod(pod)
    out = []
    session = evaluator.session(build_namespace(pod), stdout=out.append, stderr=lambda t: out.append("E:" + t))

    def front():
        for source in sys.argv[1:]:
            if source.startswith("INTERRUPT "):
                before = ticks
                future = session.submit(source[len("INTERRUPT "):])
                time.sleep(0.3)
                frozen = ticks - before
                interrupted = session.interrupt()
                outcome = future.result(10)
                after = ticks
                deadline = time.monotonic() + 10
                while ticks - after <= 5 and time.monotonic() < deadline:
                    time.sleep(0.01)  # until the ticker has ticked again, with a deadline
                report(source=source, status=outcome.status, text=outcome.text, interrupted=interrupted,
                       ticks_while=frozen, ticks_after=ticks - after)
            else:
                out.clear()
                until, statement = "", source
                if source.startswith("UNTIL "):  # "UNTIL text|statement": its tasks print text after it returns
                    until, _, statement = source[len("UNTIL "):].partition("|")
                outcome = session.run(statement, 10)
                deadline = time.monotonic() + 10
                while until not in "".join(out) and time.monotonic() < deadline:
                    time.sleep(0.01)  # polling the session's output, with a deadline
                report(source=source, status=outcome.status, text=outcome.text, out="".join(out))

    await asyncio.to_thread(front)
    report(source="-", running=pod.running)

# The beans never end by themselves: the stop after the guest cancels them, without waiting.
sys.exit(run_pod(load(None, (), {"STOP_WAIT_TIME": 0}), keep_alive=True, guest=guest))
"""


def _session(tmp_path: Path, *sources: str) -> tuple[list[dict[str, Any]], str]:
    (tmp_path / "drive.py").write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, "drive.py", *sources], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    return lines, proc.stdout


def test_values_are_echoed_with_top_level_await_and_kept_as_underscore(tmp_path: Path) -> None:
    results, _ = _session(tmp_path, "6 * 7", "x = await asyncio.sleep(0.01, 'slept')", "x", "_ + '!'", "None")
    assert [(r["status"], r["text"]) for r in results[:-1]] == [
        ("ok", "42"),
        ("ok", None),
        ("ok", "'slept'"),
        ("ok", "'slept!'"),
        ("ok", None),
    ]
    assert results[-1] == {"source": "-", "running": True}


def test_errors_are_tracebacks_of_the_statement_only(tmp_path: Path) -> None:
    results, _ = _session(tmp_path, "def f():\n    return 1 / 0\nf()", "def g(:", "bean('nope')")
    error, syntax, mistake = results[:3]
    assert error["status"] == "error"
    assert 'File "<console#1>", line 2, in f' in error["text"] and "return 1 / 0" in error["text"]
    assert error["text"].endswith("ZeroDivisionError: division by zero")
    assert "evaluator.py" not in error["text"]
    assert syntax["status"] == "error" and syntax["text"].endswith("SyntaxError: invalid syntax")
    assert mistake["status"] == "error"
    assert mistake["text"].startswith("BeanNotFound: no bean with label 'nope'") and "\n" not in mistake["text"]


@pytest.mark.parametrize(
    ("source", "frozen"),
    [
        ("n = 0\nwhile True:\n    n += 1", True),  # blocks the loop: KeyboardInterrupt inside it
        ("import time; time.sleep(30)", True),  # blocks in C: the kick breaks the sleep
        ("await asyncio.sleep(30)", False),  # awaits: cancelled
    ],
)
def test_interrupt_from_another_thread_ends_the_statement_and_the_beans_go_on(
    tmp_path: Path, source: str, frozen: bool
) -> None:
    results, _ = _session(tmp_path, "INTERRUPT " + source, "1 + 1")
    interrupted, after, last = results
    assert interrupted["status"] == "interrupted" and interrupted["interrupted"] is True
    if frozen:
        assert interrupted["ticks_while"] <= 1, "the statement was meant to block the loop"
        assert interrupted["text"].startswith("Traceback") and interrupted["text"].endswith("KeyboardInterrupt")
        assert "aiopod" not in interrupted["text"]  # no frame of the signal handler or the evaluator
    else:
        assert interrupted["ticks_while"] > 3  # the loop ran while the statement awaited
        assert "cancelled" in interrupted["text"]
    assert interrupted["ticks_after"] > 5  # the ticker bean runs again
    assert (after["status"], after["text"]) == ("ok", "2")  # the session takes statements again
    assert last["running"] is True  # the kick was not taken for a stop


def test_output_of_the_statement_and_its_tasks_goes_to_the_session_only(tmp_path: Path) -> None:
    results, bean_output = _session(
        tmp_path,
        "print('to ' + 'me'); import sys; sys.stderr.write('err' + 'or\\n')",
        "import pprint; pprint.pprint({'k': 1})",
        "UNTIL from task|t = asyncio.ensure_future(asyncio.sleep(0.01)); "
        "t.add_done_callback(lambda _: print('from ' + 'task'))",
        "help(len)",
    )
    printed, pprinted, task, helped = (r["out"] for r in results[:4])
    assert printed == "to me\nE:error\n"
    assert pprinted == "{'k': 1}\n"
    assert task == "from task\n"
    assert "Return the number of items in a container." in helped  # no pager started
    assert "bean line" not in "".join((printed, pprinted, task, helped))
    assert "bean line" in bean_output  # the beans' own output goes to the pod's stdout
    assert "to me" not in bean_output and "from task" not in bean_output


def test_exit_ends_the_session_not_the_pod(tmp_path: Path) -> None:
    results, _ = _session(tmp_path, "exit()", "quit", "raise SystemExit(3)")
    assert [r.get("status") for r in results] == ["exit", "ok", "exit", None]
    assert results[1]["text"] == "Use exit() or Ctrl-D to leave the console"
    assert results[-1]["running"] is True
