"""Rows 1 and 8: spawning 100k trivial beans, against bare tasks, and with the loop monitor off."""

from __future__ import annotations

from collections.abc import Callable

from ._harness import Comparison, Row, Settings, interleaved, seconds, worker

BEANS = 100_000
PAIRS = 7
#: Rounds for row 8, alone or riding along with row 1 on asyncio: its ratio is near 1, and
#: one run of the same 100k spawn takes 1.0 to 2.1 s between processes on this shared 2-core host.
WATCHDOG_ROUNDS = 11
SPAWN_GOAL = 1.5
WATCHDOG_GOAL = 1.05  # "no measurable slowdown": within the noise of these runs


def _spawn(kind: str, loop: str, monitor: str = "monitor") -> Callable[[], float]:
    def measure() -> float:
        return float(worker("spawn", kind, loop, BEANS, monitor)["seconds"])

    return measure


def _spawn_row(values: dict[str, list[float]], loop: str) -> Row:
    comparison = Comparison(values["pod"], values["tasks"])
    name = f"spawn+finish 100k beans vs create_task+gather ({loop})"
    return comparison.row(1, name, SPAWN_GOAL, ("pod", "tasks"), seconds)


def _watchdog_row(values: dict[str, list[float]]) -> Row:
    comparison = Comparison(values["pod"], values["pod-no-monitor"])
    name = "watchdog: 100k-bean spawn, monitor on vs off (asyncio)"
    return comparison.row(8, name, WATCHDOG_GOAL, ("on", "off"), seconds)


def run(settings: Settings, *, watchdog: bool = True) -> list[Row]:
    """Row 1 for asyncio and uvloop; row 8 (asyncio) from the same rounds when ``watchdog``."""
    variants = {"pod": _spawn("pod", "asyncio"), "tasks": _spawn("tasks", "asyncio")}
    if watchdog:
        variants["pod-no-monitor"] = _spawn("pod", "asyncio", "no-monitor")
    on_asyncio = interleaved(variants, settings.pairs(WATCHDOG_ROUNDS if watchdog else PAIRS))
    rows = [_spawn_row(on_asyncio, "asyncio")]
    uvloop = {"pod": _spawn("pod", "uvloop"), "tasks": _spawn("tasks", "uvloop")}
    on_uvloop = interleaved(uvloop, settings.pairs(PAIRS))
    rows.append(_spawn_row(on_uvloop, "uvloop"))
    if watchdog:
        rows.append(_watchdog_row(on_asyncio))
    return rows


def run_watchdog(settings: Settings) -> list[Row]:
    """Row 8 alone: the spawn with the loop monitor vs with ``LoopMonitor.start`` a no-op."""
    variants = {"pod": _spawn("pod", "asyncio"), "pod-no-monitor": _spawn("pod", "asyncio", "no-monitor")}
    return [_watchdog_row(interleaved(variants, settings.pairs(WATCHDOG_ROUNDS)))]
