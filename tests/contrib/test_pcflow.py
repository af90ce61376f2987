"""``aiopod.contrib.pcflow.Server``: every produced item consumed exactly once, across a stop too."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests.contrib.conftest import STOP_WAIT_TIME, Write, start, stop


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
    config = write("bad.py", "BEANS = [{'core': 'contrib_servers.Numbers', 'consumer_num': 0, 'queue_size': 'ten'}]\n")
    with start(config) as proc:
        code = proc.wait()
    errors = [line.split(": ", 3)[-1] for line in proc.output.splitlines() if line.startswith("aiopod: error:")]
    assert code == 2, proc.output
    assert errors == [
        "BEANS[0]: consumer_num: 0 must be a whole number >= 1",
        "BEANS[0]: queue_size: 'ten' must be a whole number >= 0",
    ]
