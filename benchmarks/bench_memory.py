"""Row 2: peak RSS of 100k pending beans against 100k pending tasks, above the interpreter's own."""

from __future__ import annotations

from collections.abc import Callable

from ._harness import Row, Settings, mebibytes, paired, worker

BEANS = 100_000
PAIRS = 3  # RSS hardly varies between runs (pair ratios agree to 0.01)
GOAL = 1.5


def _rss(kind: str) -> Callable[[], float]:
    def measure() -> float:
        # ru_maxrss once the 100k wait on an Event, minus ru_maxrss after the imports (same process)
        return float(worker("rss", kind, BEANS)["kib"])

    return measure


def run(settings: Settings) -> list[Row]:
    comparison = paired(_rss("pod"), _rss("tasks"), settings.pairs(PAIRS))
    name = "peak RSS of 100k pending beans vs tasks (minus baseline)"
    return [comparison.row(2, name, GOAL, ("pod", "tasks"), mebibytes)]
