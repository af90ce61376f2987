"""Rows 6 and 7: the console's time to first prompt, and the loop lag it causes while idle.

Driven like the tests drive it: a real pseudo-terminal (pexpect) with
``PROMPT_TOOLKIT_NO_CPR=1`` and ``TERM=xterm``, and raw telnet sockets answered by
``aiopod.console.attach.TelnetClient``.
"""

from __future__ import annotations

import json
import socket
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from operator import itemgetter
from pathlib import Path

import pexpect

from aiopod.console.attach import TelnetClient

from ._harness import (
    PYTHON,
    BenchmarkError,
    Row,
    Settings,
    bare_heartbeat,
    clean_env,
    free_port,
    p99,
    paired,
    plain_install,
    seconds,
    worker,
)

PROMPT = ">>>"
PROMPT_PAIRS = 5
PROMPT_GOAL = 1.2
LAG_RUNS = 3
LAG_GOAL = 0.005
INTERVAL = 0.005
SETTLE = 0.3  # after the last prompt, before the window: the prompt's first render is done
WINDOW = 3.0
TELNET_SESSIONS = 8

HEARTBEAT = """
import asyncio
import json
import time

from aiopod.pod import pass_context


@pass_context
async def heartbeat(context, path, interval):
    # Every beat: (when, gap since the previous one). Written once, when the pod stops.
    interval = float(interval)
    stop = asyncio.Event()

    def on_stop(**kwargs):
        stop.set()

    await context.add_signal_handler("SIGTERM", on_stop)
    await context.add_signal_handler("SIGINT", on_stop)
    beats = []
    last = time.monotonic()
    try:
        while not stop.is_set():
            await asyncio.sleep(interval)
            now = time.monotonic()
            beats.append((now, now - last))
            last = now
    finally:
        with open(path, "w") as f:
            json.dump(beats, f)
"""


@contextmanager
def _home() -> Iterator[Path]:
    """A temporary directory, used as HOME too: no config, history or startup file is found."""
    with tempfile.TemporaryDirectory(prefix="aiopod-bench-") as tmp:
        yield Path(tmp)


def _env(home: Path) -> dict[str, str]:
    env = clean_env(HOME=str(home), TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env.pop(name, None)
    return env


def _spawn(command: list[str], home: Path) -> pexpect.spawn:
    return pexpect.spawn(
        command[0], command[1:], cwd=str(home), env=_env(home), encoding="utf-8", timeout=30, dimensions=(50, 160)
    )


def _time_to_prompt(command: list[str], home: Path) -> Callable[[], float]:
    def measure() -> float:
        started = time.perf_counter()
        child = _spawn(command, home)
        try:
            child.expect(PROMPT)
            return time.perf_counter() - started
        except (pexpect.EOF, pexpect.TIMEOUT):
            raise BenchmarkError(f"no prompt from {' '.join(command)}: {child.before!r}") from None
        finally:
            child.close(force=True)

    return measure


def run_prompt(settings: Settings) -> list[Row]:
    """Row 6: ``aiopod shell --no-history`` against bare ptpython, both with nothing to load."""
    with _home() as home, plain_install() as bin_:  # as users install it (see plain_install)
        (home / "empty_config.py").write_text("")
        ptpython = [
            str(bin_ / "ptpython"),
            "--config-file",
            str(home / "empty_config.py"),
            "--history-file",
            str(home / "ptpython_history"),
        ]
        aiopod = [str(bin_ / "aiopod"), "shell", "--no-history"]
        comparison = paired(
            _time_to_prompt(aiopod, home), _time_to_prompt(ptpython, home), settings.pairs(PROMPT_PAIRS), warmup=True
        )
    name = "`aiopod shell --no-history` vs ptpython: first prompt"
    return [comparison.row(6, name, PROMPT_GOAL, ("aiopod", "ptpython"), seconds)]


class _Session:
    """A raw telnet session that answers negotiation and waits for the prompt."""

    def __init__(self, port: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:  # the prompt can come before the telnet bean listens
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise BenchmarkError(f"telnet: nothing listens on port {port}") from None
                time.sleep(0.05)
        self.client = TelnetClient(self.sock, "xterm")
        self.screen = ""

    def read_until(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchmarkError(f"telnet: {text!r} not received; got {self.screen[-300:]!r}")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise BenchmarkError(f"telnet: closed before {text!r}; got {self.screen[-300:]!r}")
            self.screen += self.client.feed(data).decode(errors="replace")

    def close(self) -> None:
        self.sock.close()


def _worst_lag(sessions: int) -> float:
    """One run: the worst heartbeat gap minus the interval, over WINDOW seconds of an idle console."""
    with _home() as home, ExitStack() as stack:
        (home / "beans.py").write_text(HEARTBEAT)
        beats = home / "beats.json"
        command = [PYTHON, "-m", "aiopod", "shell", "--no-history", "--stop-wait-time", "2"]
        if sessions:
            port = free_port()
            command += ["--telnet", f"127.0.0.1:{port}"]
        command.append(f"beans.heartbeat:path={beats},interval={INTERVAL}")
        child = _spawn(command, home)
        stack.callback(child.close, force=True)
        child.expect(PROMPT)
        for _ in range(sessions):
            session = _Session(port)
            stack.callback(session.close)
            session.read_until(PROMPT)
        start = time.monotonic() + SETTLE
        time.sleep(SETTLE + WINDOW + 0.1)  # the measurement window itself: everybody stays idle
        child.sendline("exit()")
        child.expect(pexpect.EOF, timeout=20)
        gaps = [gap for when, gap in json.loads(beats.read_text()) if start <= when <= start + WINDOW]
    if len(gaps) < WINDOW / INTERVAL / 2:
        raise BenchmarkError(f"only {len(gaps)} heartbeats in {WINDOW:g} s")
    return max(gaps) - INTERVAL


def run_lag(settings: Settings) -> list[Row]:
    """Row 7: loop lag with the local console idle, then also with 8 idle telnet sessions.

    A bare asyncio heartbeat in its own process runs in the same rounds: the detail
    shows that floor (what this machine does to any loop), the goal is judged on the row.
    """
    cases = {"console idle": 0, f"console + {TELNET_SESSIONS} telnet sessions idle": TELNET_SESSIONS}
    lags: dict[str, list[float]] = {what: [] for what in cases}
    errors: dict[str, str] = {}
    floor = []
    for _ in range(settings.runs(LAG_RUNS)):
        floor.append(float(worker("heartbeat", INTERVAL, WINDOW)["seconds"]))
        for what, sessions in cases.items():
            if what in errors:
                continue
            try:
                lags[what].append(_worst_lag(sessions))
            except (BenchmarkError, OSError, pexpect.ExceptionPexpect) as exc:
                errors[what] = f"{type(exc).__name__}: {exc}"
    rows = []
    for what in cases:
        name = f"max loop lag, {what}"
        if what in errors:
            rows.append(Row(7, name, "error", "-", None, errors[what]))
            continue
        median = statistics.median(lags[what])
        detail = (
            f"worst gap of a {INTERVAL * 1e3:g} ms heartbeat over {WINDOW:g} s, minus {INTERVAL * 1e3:g} ms; "
            f"runs: {', '.join(seconds(lag) for lag in lags[what])} (median shown); "
            f"bare asyncio floor {seconds(statistics.median(floor))}"
        )
        rows.append(Row(7, name, seconds(median), f"<= {LAG_GOAL * 1e3:g} ms", median <= LAG_GOAL, detail))
    return rows


TYPING_SECONDS = 20.0
KEYS_PER_SECOND = 15.0
#: After the prompt, before the first key (its lag is reported apart).
TYPING_SETTLE = 2.0
TYPING_RUNS = 2
TYPING_MAX_GOAL = 0.020
TYPING_P99_GOAL = 0.010
#: What the person types, over and over: statements, Tab completions of ``pod.`` and
#: ``asyncio.`` (Ctrl-U drops a browsed menu's line), a block, and a short await.
TYPING_SCRIPT = (
    "import json\r",
    "n = len(pod.beans) + 1\r",
    "pod.\t\t\x15",
    "x = [i * i for i in range(10)]\r",
    "asyncio.\t\t\t\x15",
    "pod.be\t\r",
    "def f(a, b):\rreturn a + b\r\r",
    "f(2, 3) + sum(x)\r",
    "await asyncio.sl\t(0.01)\r",
    "asyncio.ga\t\x15",
    "text = json.dumps({'n': n, 'x': x})\r",
)

#: Stock ptpython embedded in an asyncio program, with the same heartbeat and a ``pod``.
PTPYTHON_EMBED = """
import asyncio, sys
from ptpython.repl import embed
from aiopod.pod import Pod
import beans

async def main(path):
    pod = Pod()
    stop = asyncio.Event()
    beat = asyncio.create_task(beans.beat(path, {interval!r}, stop))
    await embed(globals={{"pod": pod, "asyncio": asyncio}}, return_asyncio_coroutine=True)
    stop.set()
    await beat

asyncio.run(main(sys.argv[1]))
"""

TYPING_BEANS = (
    HEARTBEAT
    + """

async def beat(path, interval, stop):
    beats = []
    last = time.monotonic()
    try:
        while not stop.is_set():
            await asyncio.sleep(interval)
            now = time.monotonic()
            beats.append((now, now - last))
            last = now
    finally:
        with open(path, "w") as f:
            json.dump(beats, f)
"""
)


AIOPOD_SHELL = [PYTHON, "-m", "aiopod", "shell", "--no-history", "--stop-wait-time", "2"]


def _type(child: pexpect.spawn, seconds_: float) -> tuple[float, float]:
    """Type TYPING_SCRIPT at KEYS_PER_SECOND for ``seconds_``, reading the screen meanwhile."""
    keys = "".join(TYPING_SCRIPT)
    started = time.monotonic()
    index = 0
    while True:
        due = started + index / KEYS_PER_SECOND
        if due - started >= seconds_:
            break
        while (now := time.monotonic()) < due:
            try:
                child.read_nonblocking(65536, timeout=due - now)
            except pexpect.TIMEOUT:
                pass
        child.send(keys[index % len(keys)])
        index += 1
    return started, time.monotonic()


def _typing_lag(command: list[str], home: Path, beats: Path) -> tuple[list[tuple[float, float]], float]:
    """One run: the heartbeat's beats while a person types, (when, lateness: gap minus
    interval), and the worst lateness between the prompt and the first key."""
    with ExitStack() as stack:
        child = _spawn(command, home)
        stack.callback(child.close, force=True)
        child.expect(PROMPT)
        prompt = time.monotonic()
        time.sleep(TYPING_SETTLE)  # the person has not started typing yet
        start, end = _type(child, TYPING_SECONDS)
        child.send("\x15\x04")  # clear the line, Ctrl-D
        if child.expect([pexpect.EOF, "exit"], timeout=30) == 1:  # ptpython asks first
            child.send("y")
            child.expect(pexpect.EOF, timeout=30)
    beats_ = json.loads(beats.read_text())
    found = [(when, gap - INTERVAL) for when, gap in beats_ if start <= when <= end + 0.1]
    if len(found) < TYPING_SECONDS / INTERVAL / 4:
        raise BenchmarkError(f"only {len(found)} heartbeats in {TYPING_SECONDS:g} s of typing")
    return found, max((gap - INTERVAL for when, gap in beats_ if prompt <= when < start), default=0.0)


def run_typing(settings: Settings) -> list[Row]:
    """Row 10: loop lag while a person types into `aiopod shell`, against stock ptpython embed."""
    results: dict[str, list[tuple[float, float]]] = {"aiopod": [], "ptpython": []}
    starts: dict[str, list[float]] = {"aiopod": [], "ptpython": []}
    with _home() as home:
        (home / "beans.py").write_text(TYPING_BEANS)
        (home / "embed.py").write_text(PTPYTHON_EMBED.format(interval=INTERVAL))
        beats = home / "beats.json"
        commands = {
            "aiopod": [*AIOPOD_SHELL, f"beans.heartbeat:path={beats},interval={INTERVAL}"],
            "ptpython": [PYTHON, "embed.py", str(beats)],
        }
        floors: list[str] = []
        for _ in range(settings.runs(TYPING_RUNS)):
            for name, command in commands.items():
                with ExitStack() as stack:
                    floor = stack.enter_context(bare_heartbeat(INTERVAL)) if name == "aiopod" else None
                    found, startup = _typing_lag(command, home, beats)
                late = [lateness for _, lateness in found]
                results[name].append((max(late), p99(late)))
                starts[name].append(startup)
                if floor is not None:
                    floors.append(floor.text(max(found, key=itemgetter(1))))
    worst = {name: max(m for m, _ in runs) for name, runs in results.items()}
    worst_p99 = {name: max(p for _, p in runs) for name, runs in results.items()}
    met = worst["aiopod"] <= TYPING_MAX_GOAL and worst_p99["aiopod"] <= TYPING_P99_GOAL
    met = met and worst["aiopod"] <= worst["ptpython"] / 10
    detail = (
        f"{KEYS_PER_SECOND:g} keys/s for {TYPING_SECONDS:g} s with Tab completions, {INTERVAL * 1e3:g} ms heartbeat, "
        f"worst of {len(results['aiopod'])} runs; runs (max/p99): "
        + "; ".join(
            f"{name} " + ", ".join(f"{seconds(m)}/{seconds(p)}" for m, p in runs) for name, runs in results.items()
        )
        + f"; worst lag in the {TYPING_SETTLE:g} s between the prompt and the first key: "
        + ", ".join(f"{name} {seconds(max(values))}" for name, values in starts.items())
        + "; "
        + "; ".join(f"aiopod run {n}: {text}" for n, text in enumerate(floors, 1))
    )
    result = (
        f"max {seconds(worst['aiopod'])}, p99 {seconds(worst_p99['aiopod'])} "
        f"(ptpython embed: max {seconds(worst['ptpython'])}, p99 {seconds(worst_p99['ptpython'])})"
    )
    goal = f"max <= {TYPING_MAX_GOAL * 1e3:g} ms, p99 <= {TYPING_P99_GOAL * 1e3:g} ms, max <= ptpython's / 10"
    return [Row(10, "loop lag while a person types", result, goal, met, detail)]
