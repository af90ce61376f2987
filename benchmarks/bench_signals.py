"""Row 5: ``await pod.send_signal("x")`` to 10k handlers against calling them directly."""

from __future__ import annotations

from collections.abc import Callable

from ._harness import Row, Settings, paired, seconds, worker

HANDLERS = 10_000
PAIRS = 9
GOAL = 2.0
#: Deliveries per process (the worker reports their median).
REPS = {"sync": 15, "async": 5}


def _fanout(kind: str, mode: str) -> Callable[[], float]:
    def measure() -> float:
        return float(worker("fanout", kind, mode, HANDLERS, REPS[mode])["seconds"])

    return measure


def run(settings: Settings) -> list[Row]:
    rows = []
    for mode, direct in (("sync", "a loop of calls"), ("async", "gather")):
        comparison = paired(_fanout("pod", mode), _fanout("direct", mode), settings.pairs(PAIRS))
        name = f"send_signal to 10k {mode} handlers vs {direct}"
        rows.append(comparison.row(5, name, GOAL, ("send_signal", "direct"), seconds))
    return rows
