"""A breathing console thread lets go of the GIL and the CPU after each stretch of its work."""

from __future__ import annotations

import threading
import time

from aiopod.console._switch import BREATH, BREATH_EVERY, breathe, breathing

CALLS = 100


def _spin(cpu: float) -> None:
    """Use ``cpu`` seconds of this thread's CPU."""
    end = time.thread_time() + cpu
    while time.thread_time() < end:
        pass


def _timed(calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        breathe()
    return time.perf_counter() - started


def test_a_breathing_thread_sleeps_after_each_stretch_of_its_cpu_and_no_other_thread_does() -> None:
    seen: dict[str, float] = {}

    def work() -> None:
        with breathing():
            _spin(3 * BREATH_EVERY)
            seen["after a stretch"] = _timed(1)
            seen["right after"] = _timed(CALLS)  # far less CPU than a stretch: one breath at most
            _spin(3 * BREATH_EVERY)
        seen["after breathing"] = _timed(CALLS)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive()
    _spin(3 * BREATH_EVERY)
    seen["another thread"] = _timed(CALLS)
    assert seen["after a stretch"] >= BREATH  # a sleep lasts at least as long as asked
    # Sleeping at each of these calls would take CALLS * BREATH at the least.
    for what in ("right after", "after breathing", "another thread"):
        assert seen[what] < CALLS * BREATH / 2, what
