"""``python -m benchmarks [NAME...] [--quick]``: run the benchmarks and print the table."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import (
    bench_attach,
    bench_console,
    bench_history,
    bench_memory,
    bench_signals,
    bench_spawn,
    bench_startup,
    bench_stop,
    bench_telnet,
)
from ._harness import Row, Settings, table


@dataclass(frozen=True)
class Benchmark:
    number: int
    title: str
    run: Callable[[Settings], list[Row]]


def uvicorn_hook(settings: Settings) -> list[Row]:
    """Hook for ``benchmarks/bench_uvicorn.py``, written separately: its ``run(settings)`` rows.

    Until that module exists this reports one skipped row instead of failing. It pins
    processes to CPUs, this one included: the affinity is restored for what runs next.
    """
    try:
        module = importlib.import_module("benchmarks.bench_uvicorn")
    except ModuleNotFoundError as exc:
        if exc.name != "benchmarks.bench_uvicorn":
            raise
        return [Row(9, "uvicorn in a pod", "skipped", "-", None, "benchmarks/bench_uvicorn.py does not exist yet")]
    cpus = os.sched_getaffinity(0)
    try:
        rows: list[Row] = module.run(settings)
    finally:
        os.sched_setaffinity(0, cpus)
    return rows


BENCHMARKS: dict[str, Benchmark] = {
    "spawn": Benchmark(1, "spawn and finish 100k trivial beans vs create_task+gather", bench_spawn.run),
    "memory": Benchmark(2, "peak RSS of 100k pending beans vs tasks", bench_memory.run),
    "startup": Benchmark(3, "`aiopod run mod.noop` vs python -c asyncio.run(noop())", bench_startup.run),
    "stop": Benchmark(4, "SIGTERM to exit with 10k idle beans", bench_stop.run),
    "fanout": Benchmark(5, "send_signal to 10k handlers vs direct calls", bench_signals.run),
    "shell": Benchmark(6, "`aiopod shell` vs ptpython, time to first prompt", bench_console.run_prompt),
    "lag": Benchmark(7, "loop lag with the console (and 8 telnet sessions) idle", bench_console.run_lag),
    "typing": Benchmark(10, "loop lag while a person types into the console", bench_console.run_typing),
    "watchdog": Benchmark(8, "100k-bean spawn with vs without the loop monitor", bench_spawn.run_watchdog),
    "churn": Benchmark(17, "1M short beans at a steady rate: cost per bean, RSS stays flat", bench_history.run),
    "stop100k": Benchmark(11, "SIGTERM to exit with 100k idle beans", bench_stop.run_100k),
    "uvicorn": Benchmark(9, "uvicorn in a pod (benchmarks/bench_uvicorn.py)", uvicorn_hook),
    "attach-typing": Benchmark(12, "loop lag while a person types in `aiopod attach`", bench_attach.run_typing),
    "attach-idle": Benchmark(13, "50 idle console-socket sessions: loop lag, RSS per session", bench_attach.run_idle),
    "attach-churn": Benchmark(14, "console socket: session open -> close cost", bench_attach.run_churn),
    "telnet-churn": Benchmark(16, "telnet: session open -> close cost", bench_telnet.run_churn),
}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    listing = "\n".join(f"  {name:<9} row {b.number}: {b.title}" for name, b in BENCHMARKS.items())
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Side-by-side ratio benchmarks for aiopod (A and B interleaved, median of pair ratios).",
        epilog=f"benchmarks:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer pairs and runs: a smoke run, not numbers")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    return args


def run(names: Sequence[str], settings: Settings) -> list[Row]:
    """Run the named benchmarks (in table order), turning a failure into an error row."""
    selected = [name for name in BENCHMARKS if name in names]
    rows: list[Row] = []
    for name in selected:
        benchmark = BENCHMARKS[name]
        if name == "watchdog" and "spawn" in selected:
            continue  # measured within the spawn rounds
        started = time.perf_counter()
        print(f"running {name}: {benchmark.title} ...", file=sys.stderr, flush=True)
        try:
            if name == "spawn":
                rows += bench_spawn.run(settings, watchdog="watchdog" in selected)
            else:
                rows += benchmark.run(settings)
        except Exception as exc:
            rows.append(Row(benchmark.number, benchmark.title, "error", "-", None, f"{type(exc).__name__}: {exc}"))
        print(f"  {name} took {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return sorted(rows, key=lambda row: row.number)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = Settings(quick=args.quick)
    cores = len(os.sched_getaffinity(0))
    started = time.perf_counter()
    rows = run(args.names or list(BENCHMARKS), settings)
    print(table(rows))
    met = sum(row.met is True for row in rows)
    missed = sum(row.met is False for row in rows)
    print(
        f"\n{met} met, {missed} not met, {len(rows) - met - missed} without a result; "
        f"{time.perf_counter() - started:.0f} s on {cores} cores"
        + (" (--quick: fewer pairs, numbers are rough)" if args.quick else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
