"""``aiopod run`` as a container's init systems run it: under tini and dumb-init (Debian packages).

The signal goes to the init process, which forwards it; the exit status comes back through it.
"""

from __future__ import annotations

import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.proc import Proc

Write = Callable[[str, str], Path]

INITS = {"tini": ["tini", "--"], "dumb-init": ["dumb-init"]}

BEANS = """
    import asyncio
    import threading
    import time

    from aiopod import pass_context

    @pass_context
    async def polite(context):
        stop = asyncio.Event()
        await context.add_signal_handler("SIGTERM", lambda signal, **kw: stop.set())
        await context.add_signal_handler("SIGHUP", lambda signal, **kw: print("bean heard", signal, flush=True))
        print("ready", flush=True)
        await stop.wait()
        print("polite bean ended", flush=True)

    async def blocker():
        threading.Thread(target=threading.Event().wait, name="stuck-worker").start()
        print("ready", flush=True)
        while True:
            time.sleep(0.05)  # blocks the loop for good
"""


def under(init: str, *args: str, cwd: Path) -> Proc:
    if shutil.which(INITS[init][0]) is None:
        pytest.skip(f"{init} is not installed (apt-get install -y {init})")
    return Proc([*INITS[init], sys.executable, "-m", "aiopod", *args], cwd=cwd)


@pytest.mark.parametrize("init", sorted(INITS))
def test_a_forwarded_sigterm_stops_the_pod_gracefully(write: Write, tmp_path: Path, init: str) -> None:
    write("beans.py", BEANS)
    with under(init, "run", "--stop-wait-time", "10", "beans.polite", cwd=tmp_path) as proc:
        proc.wait_for("ready")
        proc.signal(signal.SIGHUP)  # forwarded as well: a named signal, the pod goes on
        proc.wait_for("bean heard SIGHUP")
        sent = proc.signal(signal.SIGTERM)
        code = proc.wait()
        elapsed = time.monotonic() - sent
    out = proc.output
    assert code == 0, out
    assert "polite bean ended" in out
    assert "cancelling" not in out
    assert elapsed < 3.0, out


@pytest.mark.parametrize("init", sorted(INITS))
def test_a_blocked_loop_and_a_stuck_thread_still_exit_within_the_budget(
    write: Write, tmp_path: Path, init: str
) -> None:
    wait = 0.5
    write("beans.py", BEANS)
    with under(init, "run", "--stop-wait-time", str(wait), "beans:blocker", cwd=tmp_path) as proc:
        proc.wait_for("ready")
        sent = proc.signal(signal.SIGTERM)
        code = proc.wait()
        elapsed = time.monotonic() - sent
    out = proc.output
    assert code == 1, out
    assert "the event loop did not answer the stop" in out
    assert elapsed < wait + 3.0 + 2.0, f"exited {elapsed:.2f} s after SIGTERM\n{out}"
