"""Rows 1 and 8: spawning 100k trivial beans, against bare tasks, and with the loop monitor off."""

from __future__ import annotations

from ._harness import Comparison, Row, Settings, seconds, side_by_side

BEANS = 100_000
ROUNDS = 5
SPAWN_GOAL = 1.5
WATCHDOG_GOAL = 1.05  # "no measurable slowdown": side by side, identical runs agree within 2%


def _case(kind: str, loop: str, monitor: str = "monitor") -> tuple[object, ...]:
    return ("spawn", kind, loop, BEANS, monitor)


def _spawn_row(values: dict[str, list[float]], loop: str) -> Row:
    comparison = Comparison(values["pod"], values["tasks"])
    name = f"spawn+finish 100k beans vs create_task+gather ({loop})"
    return comparison.row(1, name, SPAWN_GOAL, ("pod", "tasks"), seconds)


def _watchdog_row(values: dict[str, list[float]]) -> Row:
    comparison = Comparison(values["pod"], values["pod-no-monitor"])
    name = "watchdog: 100k-bean spawn, monitor on vs off (asyncio)"
    return comparison.row(8, name, WATCHDOG_GOAL, ("on", "off"), seconds)


def run(settings: Settings, *, watchdog: bool = True) -> list[Row]:
    """Row 1 for asyncio and uvloop; row 8 (asyncio) from the same rounds when ``watchdog``.

    The variants of a loop run side by side on one CPU; each reports the CPU seconds from
    making the pod (or the loop) to the last bean (or task) done, its threads included.
    """
    variants = {"pod": _case("pod", "asyncio"), "tasks": _case("tasks", "asyncio")}
    if watchdog:
        variants["pod-no-monitor"] = _case("pod", "asyncio", "no-monitor")
    on_asyncio = side_by_side(variants, settings.pairs(ROUNDS))
    rows = [_spawn_row(on_asyncio, "asyncio")]
    uvloop = {"pod": _case("pod", "uvloop"), "tasks": _case("tasks", "uvloop")}
    rows.append(_spawn_row(side_by_side(uvloop, settings.pairs(ROUNDS)), "uvloop"))
    if watchdog:
        rows.append(_watchdog_row(on_asyncio))
    return rows


def run_watchdog(settings: Settings) -> list[Row]:
    """Row 8 alone: the spawn with the loop monitor vs with ``WATCHDOG = False``."""
    variants = {"pod": _case("pod", "asyncio"), "pod-no-monitor": _case("pod", "asyncio", "no-monitor")}
    return [_watchdog_row(side_by_side(variants, settings.pairs(ROUNDS)))]
