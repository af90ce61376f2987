"""What the benchmarks share: settings, interleaved pairs, subprocess workers, the table."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import venv
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(sys.executable).parent
#: Bytecode caches for every child, outside the repository: startups are measured with
#: warm .pyc files, as users get them, even where PYTHONDONTWRITEBYTECODE is set.
PYCACHE = Path(tempfile.gettempdir()) / "aiopod-benchmarks-pycache"


class BenchmarkError(RuntimeError):
    """A measurement could not be taken (a worker failed, a prompt never came)."""


@dataclass(frozen=True)
class Settings:
    """How hard to try: ``quick`` runs fewer pairs (for a smoke run, not for numbers)."""

    quick: bool = False

    def pairs(self, full: int) -> int:
        """Interleaved A/B pairs to run."""
        return min(full, 3) if self.quick else full

    def runs(self, full: int) -> int:
        """Repeats of an absolute measurement."""
        return 1 if self.quick else full


@dataclass(frozen=True)
class Row:
    """One line of the table; ``number`` orders the table (the row of the benchmark brief)."""

    number: int
    name: str
    result: str
    goal: str
    met: bool | None  # None: nothing to judge (an error, a skipped benchmark)
    detail: str = ""


@dataclass(frozen=True)
class Comparison:
    """A and B measured in interleaved pairs; ``ratio`` is the median of the pair ratios A/B."""

    a: list[float]
    b: list[float]

    @property
    def ratios(self) -> list[float]:
        return [x / y for x, y in zip(self.a, self.b, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    def row(self, number: int, name: str, goal: float, names: tuple[str, str], fmt: Callable[[float], str]) -> Row:
        """A row that passes when the median ratio is at most ``goal``."""
        a_name, b_name = names
        ratios = self.ratios
        detail = (
            f"{a_name} {fmt(statistics.median(self.a))} vs {b_name} {fmt(statistics.median(self.b))}; "
            f"pair ratios {min(ratios):.2f}-{max(ratios):.2f} (n={len(ratios)})"
        )
        return Row(number, name, f"{self.ratio:.2f}x", f"<= {goal:g}x", self.ratio <= goal, detail)


def interleaved(
    variants: Mapping[str, Callable[[], float]], rounds: int, *, warmup: bool = False
) -> dict[str, list[float]]:
    """Measure every variant once per round; ratios taken within a round cancel the machine's load.

    The order changes every round, forwards and backwards (A B, B A, B A, A B; with three:
    A B C, C B A, B C A, A C B, ...), so no variant always runs first or always follows
    the same one: a process can be slowed by the one before it (pages it freed).
    ``warmup`` runs each variant once first, unrecorded (file cache, .pyc).
    """
    names = list(variants)
    if warmup:
        for name in names:
            variants[name]()
    values: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = (index // 2) % len(names)
        order = names[shift:] + names[:shift]
        for name in reversed(order) if index % 2 else order:
            values[name].append(variants[name]())
    return values


def paired(a: Callable[[], float], b: Callable[[], float], pairs: int, *, warmup: bool = False) -> Comparison:
    """Measure ``a`` and ``b`` alternately (A B, B A, ...); see :func:`interleaved`."""
    values = interleaved({"a": a, "b": b}, pairs, warmup=warmup)
    return Comparison(values["a"], values["b"])


def shared_cpu() -> set[int]:
    """One CPU for every side of a side-by-side run: the last this process may use."""
    return {max(os.sched_getaffinity(0))}


def side_by_side(
    cases: Mapping[str, Sequence[object]], rounds: int, *, key: str = "cpu", timeout: float = 180.0
) -> dict[str, list[float]]:
    """Run one worker per case *at the same time*, pinned to one shared CPU, ``rounds`` times.

    Returns each case's ``key`` (the CPU seconds of its measured section) per round. The
    kernel shares the CPU between them, and whatever slows the host (steal, cache, a
    neighbour) slows all of them at once, so the ratios are those of their costs: on this
    project's host, one after the other the same 100k-bean spawn took 1.0-2.1 s, while
    side by side two identical runs agree within 2%. The start order rotates each round.
    """
    names = list(cases)
    values: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        order = names[shift:] + names[:shift]
        with tempfile.TemporaryDirectory(prefix="aiopod-bench-") as tmp:
            procs = {}
            for name in order:
                command = [PYTHON, "-m", "benchmarks._worker", *map(str, cases[name])]
                with open(Path(tmp) / name, "w") as stderr:
                    proc = subprocess.Popen(
                        command, cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE, stderr=stderr, text=True
                    )
                os.sched_setaffinity(proc.pid, shared_cpu())
                procs[name] = proc
            for name, proc in procs.items():
                try:
                    out, _ = proc.communicate(timeout=timeout)
                except subprocess.TimeoutExpired:
                    for other in procs.values():
                        other.kill()
                    raise BenchmarkError(f"worker {cases[name]} did not finish within {timeout:g} s") from None
                lines = out.strip().splitlines()
                if proc.returncode != 0 or not lines:
                    tail = (Path(tmp) / name).read_text().strip().splitlines()[-5:]
                    raise BenchmarkError(f"worker {cases[name]} exited {proc.returncode}: " + " | ".join(tail))
                values[name].append(float(json.loads(lines[-1])[key]))
    return values


def worker(case: str, *args: object, timeout: float = 180.0) -> dict[str, Any]:
    """Run ``benchmarks._worker CASE ARGS`` in a fresh interpreter; return the JSON it prints last."""
    command = [PYTHON, "-m", "benchmarks._worker", case, *map(str, args)]
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"worker {case} {args} did not finish within {timeout:g} s") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise BenchmarkError(f"worker {case} {args} exited {done.returncode}: " + " | ".join(tail))
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def aiopod_command() -> list[str]:
    """The ``aiopod`` console script of this interpreter's environment (``python -m aiopod`` if absent)."""
    script = BIN / "aiopod"
    return [str(script)] if script.exists() else [PYTHON, "-m", "aiopod"]


@contextmanager
def plain_install() -> Iterator[Path]:
    """A virtualenv in which aiopod is a plain package, as ``pip install aiopod`` leaves it;
    yields its ``bin`` folder (``python``, and the ``aiopod`` and ``ptpython`` commands).

    The environment the benchmarks run from is usually the README's editable install,
    whose import hook (setuptools' finder, loaded by a ``.pth`` file) adds ~20 ms to every
    Python start there, aiopod's or not, so a start-up ratio measured in it is flattered
    (row 3 in the same hour: 1.29x there, 1.53x here). Here the repository and that
    environment's packages are plain ``sys.path`` entries, and its ``.pth`` files do not run.
    """
    with tempfile.TemporaryDirectory(prefix="aiopod-plain-") as tmp:
        home = Path(tmp) / "venv"
        venv.EnvBuilder(with_pip=False, symlinks=True).create(home)
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        paths = dict.fromkeys([str(ROOT), sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
        (home / "lib" / version / "site-packages" / "aiopod-plain.pth").write_text("\n".join(paths) + "\n")
        for name in ("aiopod", "ptpython"):
            script = (BIN / name).read_text().split("\n", 1)[1]
            target = home / "bin" / name
            target.write_text(f"#!{home / 'bin' / 'python'}\n{script}")
            target.chmod(0o755)
        yield home / "bin"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without ``AIOPOD_*``/``PYTHON*`` settings that would change what is measured."""
    drop = ("AIOPOD_", "PYTHONSTARTUP", "PTPYTHON", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.update(extra)
    return env


#: A bare asyncio heartbeat (no aiopod) in a process of its own, run beside a pod's window:
#: what the machine does to any loop at that moment. Every beat: (when, lateness).
BARE_HEARTBEAT = """
import asyncio, json, signal, sys, time

# A benchmark started in the background of a shell inherits SIGINT ignored, and Python
# then leaves it ignored: the SIGINT that ends this heartbeat would never arrive.
signal.signal(signal.SIGINT, signal.default_int_handler)

async def main(interval, path):
    beats, last = [], time.monotonic()
    try:
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            beats.append((now, now - last - interval))
            last = now
    finally:
        with open(path, "w") as f:
            json.dump(beats, f)

try:
    asyncio.run(main(float(sys.argv[1]), sys.argv[2]))
except KeyboardInterrupt:
    pass
"""


@dataclass
class Floor:
    """What the bare heartbeat beside a window saw: ``(when, lateness)`` a beat, on the
    system's monotonic clock (the same in every process), filled when its block ends."""

    interval: float
    beats: list[tuple[float, float]] = field(default_factory=list)

    def late(self) -> list[float]:
        return [late for _, late in self.beats]

    def over(self, when: float, late: float) -> float | None:
        """The bare heartbeat's worst lateness over the pod's beat that ended at ``when``,
        ``late`` seconds late (its beats whose sleep overlapped that one's)."""
        began = when - late - self.interval
        found = [gap for end, gap in self.beats if end >= began and end - gap - self.interval <= when]
        return max(found, default=None)

    def text(self, worst: tuple[float, float] | None = None) -> str:
        """``bare asyncio heartbeat beside it: max ..., p99 ...``, and over the pod's ``worst`` beat."""
        late = self.late()
        if not late:
            return "no bare heartbeat measured"
        text = f"bare asyncio heartbeat beside it: max {seconds(max(late))}, p99 {seconds(p99(late))}"
        if worst is not None:
            over = self.over(*worst)
            text += f"; over the pod's worst beat {seconds(over)}" if over is not None else ""
        return text


@contextmanager
def bare_heartbeat(interval: float) -> Iterator[Floor]:
    """Run the bare heartbeat for the block's duration; yields its ``Floor``, filled at the end."""
    with tempfile.TemporaryDirectory(prefix="aiopod-floor-") as tmp:
        out = Path(tmp) / "beats.json"
        proc = subprocess.Popen([PYTHON, "-c", BARE_HEARTBEAT, str(interval), str(out)], env=clean_env())
        time.sleep(0.3)  # started and settled before the window opens
        floor = Floor(interval)
        try:
            yield floor
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(20)
            if out.exists():
                floor.beats.extend((when, late) for when, late in json.loads(out.read_text()))


def p99(values: Sequence[float]) -> float:
    """The 99th percentile (the max below 100 values)."""
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seconds(value: float) -> str:
    """``2.91 s``, ``412 ms``, ``3.5 ms``, ``120 us``."""
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 0.1:
        return f"{value * 1e3:.0f} ms"
    if value >= 1e-3:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.0f} us"


def mebibytes(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def table(rows: Sequence[Row]) -> str:
    """The rows as a fixed-width text table."""
    header = ("#", "benchmark", "result", "goal", "met", "detail")
    cells = [header] + [
        (str(r.number), r.name, r.result, r.goal, "-" if r.met is None else "met" if r.met else "NOT MET", r.detail)
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    lines = []
    for index, row in enumerate(cells):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
        if index == 0:
            lines.append("  ".join("-" * width for width in widths) + "  " + "-" * len(header[-1]))
    return "\n".join(line.rstrip() for line in lines)
