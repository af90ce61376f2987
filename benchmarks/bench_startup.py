"""Row 3: wall time of ``aiopod run mod.noop`` against ``python -c 'asyncio.run(noop())'``.

Both run from a plain install (``plain_install``), as users get aiopod, not from the
editable one of the README's quick start, whose import hook slows every start alike.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ._harness import BenchmarkError, Row, Settings, clean_env, paired, plain_install, seconds

PAIRS = 15  # a start is ~0.2 s, and one start varies 1.0-2.1x on this host: many pairs are cheap
GOAL = 1.5
NOOP = "async def noop():\n    pass\n"
BASELINES = {
    "asyncio": "import asyncio, noop; asyncio.run(noop.noop())",
    "uvloop": "import uvloop, noop; uvloop.run(noop.noop())",
}


def _wall(command: list[str], cwd: Path) -> Callable[[], float]:
    env = clean_env()

    def measure() -> float:
        started = time.perf_counter()
        done = subprocess.run(
            command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60, check=False
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise BenchmarkError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode()[-300:]}")
        return elapsed

    return measure


def run(settings: Settings) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="aiopod-bench-") as tmp, plain_install() as bin_:
        cwd = Path(tmp)
        (cwd / "noop.py").write_text(NOOP)
        for loop, baseline in BASELINES.items():
            pod = _wall([str(bin_ / "aiopod"), "run", "--loop-type", loop, "noop.noop"], cwd)
            bare = _wall([str(bin_ / "python"), "-c", baseline], cwd)
            comparison = paired(pod, bare, settings.pairs(PAIRS), warmup=True)
            name = f"`aiopod run mod.noop` vs python -c {loop}.run(noop())"
            rows.append(comparison.row(3, name, GOAL, ("aiopod", "python"), seconds))
    return rows
