"""``aiopod.contrib.pcflow.Server``: every produced item consumed exactly once, across a stop too."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests.contrib.conftest import STOP_WAIT_TIME, Write, start
from tests.proc import stop


def numbers(out: str, what: str) -> Counter[int]:
    return Counter(int(n) for n in re.findall(rf"^{what} (\d+)$", out, re.MULTILINE))


def test_sigterm_loses_no_item_and_consumes_each_once() -> None:
    with start("contrib_pcflow.py") as proc:
        proc.wait_for("consumed 20")
        code, elapsed = stop(proc)
    out = proc.output
    assert code == 0, out
    produced, consumed = numbers(out, "produced"), numbers(out, "consumed")
    assert len(produced) > 20
    assert consumed == produced, f"lost: {produced - consumed}, twice: {consumed - produced}"
    assert set(produced.values()) == {1}
    assert f"flow: produced {len(produced)} consumed {len(produced)} failed 0" in out
    assert "cancelling" not in out and "not consumed" not in out
    assert elapsed < STOP_WAIT_TIME, out


@pytest.mark.parametrize(
    ("consumers", "queue_size", "fail_every", "failed"),
    [(3, 2, 3, [0, 3, 6, 9]), (1, 1, 1, list(range(12)))],
    ids=["some-fail", "all-fail-one-consumer-full-queue"],
)
def test_a_raising_consume_is_logged_with_its_item_and_the_flow_goes_on(
    write: Write, consumers: int, queue_size: int, fail_every: int, failed: list[int]
) -> None:
    config = write(
        "flow.py",
        f"""
        BEANS = [{{
            "core": "contrib_servers.Numbers", "label": "numbers", "count": 12, "delay": 0,
            "consumer_num": {consumers}, "queue_size": {queue_size}, "fail_every": {fail_every},
        }}]
        """,
    )
    with start(config) as proc:
        code = proc.wait()
    out = proc.output
    assert code == 0, out
    logged = [int(n) for n in re.findall(r"Numbers\.consume\((\d+)\) failed; the flow goes on", out)]
    assert sorted(logged) == failed
    assert out.count(f"ValueError: 0 is a multiple of {fail_every}") == 1
    assert sorted(numbers(out, "consumed")) == sorted(set(range(12)) - set(failed))
    assert f"flow: produced 12 consumed {12 - len(failed)} failed {len(failed)}" in out


def test_a_failing_producer_fails_the_bean_after_its_items_are_consumed(write: Write) -> None:
    write(
        "broken.py",
        """
        import asyncio

        from aiopod.contrib.pcflow import Server


        class Broken(Server):
            async def produce(self, **kwargs):
                for n in range(5):
                    yield n
                raise OSError("source went away")

            async def consume(self, obj, **kwargs):
                await asyncio.sleep(0.01)
                print("consumed", obj, flush=True)
        """,
    )
    config = write("flow.py", "BEANS = [{'core': 'broken.Broken', 'label': 'broken', 'consumer_num': 2}]\n")
    with start(config) as proc:
        code = proc.wait()
    out = proc.output
    assert code == 1, out
    assert sorted(numbers(out, "consumed")) == [0, 1, 2, 3, 4]
    assert "bean #1 'broken' (broken.Broken) failed" in out
    assert "OSError: source went away" in out


def test_bad_consumer_num_and_queue_size_are_config_errors(write: Write) -> None:
    config = write(
        "bad.py",
        """
        BEANS = [
            {"core": "contrib_servers.Numbers", "consumer_num": 0, "queue_size": "ten"},
            {"core": "contrib_servers.Numbers", "consumer_num": float("inf")},
            {"core": "contrib_servers.Numbers", "consumer_num": 2.5, "queue_size": -1},
            {"core": "contrib_servers.Numbers", "consumer_num": True, "queue_size": float("nan")},
        ]
        """,
    )
    with start(config) as proc:
        code = proc.wait()
    lines = proc.output.splitlines()
    errors = [line.split(": ", 3)[-1] for line in lines if line.startswith("aiopod: error:")]
    assert code == 2, proc.output
    assert len(errors) == len(lines), proc.output  # one line each, no traceback
    assert errors == [
        "BEANS[0]: consumer_num: 0 must be a whole number >= 1",
        "BEANS[0]: queue_size: 'ten' must be a whole number >= 0",
        "BEANS[1]: consumer_num: inf must be a whole number >= 1",
        "BEANS[2]: consumer_num: 2.5 must be a whole number >= 1",
        "BEANS[2]: queue_size: -1 must be a whole number >= 0",
        "BEANS[3]: consumer_num: True must be a whole number >= 1",
        "BEANS[3]: queue_size: nan must be a whole number >= 0",
    ]


SLOW_FLOWS = """
    import asyncio

    from aiopod.contrib.pcflow import Server


    class Slow(Server):
        async def produce(self, **kwargs):
            n = 0
            while True:  # never looks at self.stopping: the flow stops pulling by itself
                print(f"produced {n}", flush=True)
                yield n
                n += 1

        async def consume(self, obj, **kwargs):
            print(f"started {obj}", flush=True)
            await asyncio.sleep(0.6)
            print(f"consumed {obj}", flush=True)

        def cleanup(self, **kwargs):
            counts = f"produced {self.produced} consumed {self.consumed} failed {self.failed}"
            print(f"flow: {counts} unconsumed {self.unconsumed}", flush=True)


    class Keeping(Slow):
        async def on_unconsumed(self, items, **kwargs):
            await asyncio.sleep(0.1)  # e.g. put them back on a broker
            for item in items:
                print(f"kept {item}", flush=True)
"""


def drain_longer_than_stop_wait_time(write: Write, core: str) -> tuple[str, int, float]:
    """A flow with 13 items in hand at SIGTERM that needs 3.9 s to drain them, and 3 s to stop."""
    write("flows.py", SLOW_FLOWS)
    config = write(
        "config.py",
        f"STOP_WAIT_TIME = 3\nBEANS = [{{'core': '{core}', 'label': 'flow', 'consumer_num': 2, 'queue_size': 10}}]\n",
    )
    with start(config) as proc:
        proc.wait_for("consumed 1\n")
        code, elapsed = stop(proc)
    return proc.output, code, elapsed


def test_a_drain_longer_than_stop_wait_time_hands_every_unconsumed_item_to_on_unconsumed(write: Write) -> None:
    out, code, elapsed = drain_longer_than_stop_wait_time(write, "flows.Keeping")
    assert code == 0, out
    produced, consumed, kept = numbers(out, "produced"), numbers(out, "consumed"), numbers(out, "kept")
    in_flight = numbers(out, "started") - consumed  # consume() begun, cut short by the stop
    assert kept, out
    assert in_flight and not in_flight - kept, out
    assert consumed + kept == produced, f"lost: {produced - consumed - kept}, twice: {consumed + kept - produced}"
    assert set(consumed.values()) | set(kept.values()) == {1}
    counts = f"produced {len(produced)} consumed {len(consumed)} failed 0 unconsumed {len(kept)}"
    assert f"flow: {counts}" in out
    assert "not consumed" not in out  # the default warning is not given when on_unconsumed is defined
    assert "cancelling" not in out  # the flow ended by itself, before the pod had to cancel it
    assert 2.0 < elapsed < 3.0, out  # the drain is cut 0.75 s (a quarter of STOP_WAIT_TIME) before its end


def test_the_default_on_unconsumed_logs_the_exact_count_in_flight_items_included(write: Write) -> None:
    out, code, elapsed = drain_longer_than_stop_wait_time(write, "flows.Slow")
    assert code == 0, out
    produced, consumed = numbers(out, "produced"), numbers(out, "consumed")
    lost = len(produced) - len(consumed)
    assert lost > 0, out
    assert f"flow: {lost} items taken from the producer were not consumed (define on_unconsumed" in out
    assert f"flow: produced {len(produced)} consumed {len(consumed)} failed 0 unconsumed {lost}" in out
    assert "cancelling" not in out
    assert elapsed < 3.0, out


def test_a_consume_raising_cancelled_error_is_logged_and_its_consumer_goes_on(write: Write) -> None:
    write(
        "cancelling.py",
        """
        import asyncio

        from aiopod.contrib.pcflow import Server


        class Cancelling(Server):
            async def produce(self, **kwargs):
                for n in range(12):
                    yield n

            async def consume(self, obj, **kwargs):
                if obj % 3 == 0:  # a future cancelled under it, as a library's can be
                    future = asyncio.get_running_loop().create_future()
                    future.cancel()
                    await future
                print(f"consumed {obj}", flush=True)

            def cleanup(self, **kwargs):
                counts = f"produced {self.produced} consumed {self.consumed} failed {self.failed}"
                print(f"flow: {counts} unconsumed {self.unconsumed}", flush=True)
        """,
    )
    # One consumer: were it killed by the first CancelledError, the flow would stall.
    config = write("flow.py", "BEANS = [{'core': 'cancelling.Cancelling', 'consumer_num': 1, 'queue_size': 1}]\n")
    with start(config) as proc:
        code = proc.wait()
    out = proc.output
    assert code == 0, out
    logged = [int(n) for n in re.findall(r"Cancelling\.consume\((\d+)\) failed; the flow goes on", out)]
    assert logged == [0, 3, 6, 9]
    assert out.count("asyncio.exceptions.CancelledError") == 4
    assert sorted(numbers(out, "consumed")) == [1, 2, 4, 5, 7, 8, 10, 11]
    assert "flow: produced 12 consumed 8 failed 4 unconsumed 0" in out
