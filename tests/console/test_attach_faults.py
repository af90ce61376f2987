"""The console socket under bad input and churn: one session's fault is that session's alone."""

from __future__ import annotations

import gc
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aiopod.console import protocol
from tests.console._attach import BEANS, Pod, RawClient, environment, rss_kib
from tests.console._pty import wait_ticking


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Pod, Path, Path]]:
    (tmp_path / "beans.py").write_text(BEANS)
    tick = tmp_path / "ticks.txt"
    pod = Pod(tmp_path, environment(tmp_path), f"beans.ticker:path={tick}")
    opened: list[RawClient] = []
    monkeypatch.setattr(RawClient, "__init__", _tracked(RawClient.__init__, opened))
    try:
        yield pod, pod.socket(), tick
    finally:
        for client in opened:
            client.close()
        pod.stop()


def _tracked(init: Callable[..., None], opened: list[RawClient]) -> Callable[..., None]:
    """Every RawClient the test makes is closed at the end (a failing assertion leaves some open)."""

    def tracked(self: RawClient, *args: object) -> None:
        init(self, *args)
        opened.append(self)

    return tracked


def test_garbage_oversize_frames_and_a_version_mismatch_close_only_that_session(
    served: tuple[Pod, Path, Path],
) -> None:
    pod, path, tick = served
    good = RawClient(path)
    good.session()
    assert good.run("marker = 'untouched'; 6 * 7")[0] == {
        "type": "done",
        "id": 1,
        "status": "ok",
        "result": "42",
        "plain": False,
    }
    cases = [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "is over the 1048576-byte limit"),  # b"GET " is 1.1 GB
        (struct.pack("!I", 7) + b"\xff\xfe{not}", "a frame that is not UTF-8 JSON"),
        (struct.pack("!I", 2) + b"[]", "a frame that is not an object with a 'type'"),
        (protocol.encode({**protocol.hello(), "version": 99}), "protocol version 99 is not supported"),
        (protocol.encode({"type": "run", "code": "1"}), "expected a aiopod-console hello, got a 'run' frame"),
    ]
    for data, reason in cases:
        bad = RawClient(path)
        bad.send_raw(data)
        answer = bad.read()
        assert answer is not None and answer["type"] == "error", answer
        assert reason in answer["message"]
        assert bad.read() is None  # and the pod closed that connection
        bad.close()
        pod.wait_for(f"console socket: closed a connection from pid \\d+ uid \\d+: .*{reason[:20]}")
    # Inside a session: an oversize frame, then an unknown frame type.
    for data, reason in [
        (struct.pack("!I", protocol.MAX_FRAME + 1), "over the 1048576-byte limit"),
        (protocol.encode({"type": "launch-missiles"}), "unknown frame type 'launch-missiles'"),
    ]:
        bad = RawClient(path)
        bad.session()
        bad.send_raw(data)
        error, _ = bad.read_until("error")
        assert reason in error["message"]
        assert bad.read() is None
        bad.close()
        pod.wait_for(f"ended after [\\d.]+s: protocol error: .*{reason[:20]}")
    done, _ = good.run("marker", 2)
    assert done["result"] == "'untouched'"
    wait_ticking(tick)
    good.send({"type": "bye"})
    assert pod.proc.poll() is None


def test_a_statement_that_never_reads_its_output_cannot_grow_the_pod(served: tuple[Pod, Path, Path]) -> None:
    pod, path, tick = served
    flood = RawClient(path)
    flood.session()
    flood.send({"type": "run", "id": 1, "code": "while True: print('x' * 1000)"})  # and never read a byte
    pod.wait_for(r"ended after [\d.]+s: the client stopped reading its output", timeout=60)
    wait_ticking(tick)  # the statement was stopped with the session
    other = RawClient(path)
    other.session()
    assert other.run("'fine'")[0]["result"] == "'fine'"


def test_100_sessions_opened_and_closed_leave_no_memory_behind(served: tuple[Pod, Path, Path]) -> None:
    pod, path, _ = served

    def churn(count: int) -> None:
        for n in range(count):
            client = RawClient(path)
            client.session()
            done, out = client.run(f"print('session', {n}); x = list(range(1000)); len(x)")
            assert done.get("result") == "1000" and out == f"session {n}\n", done
            client.send({"type": "bye"})
            client.close()

    churn(20)  # warm up: the evaluator, the compiled helpers, allocator arenas
    pod.wait_for(r"console session #20 .* ended after")
    before = rss_kib(pod.pid)
    churn(100)
    pod.wait_for(r"console session #120 .* ended after")
    gc.collect()
    after = rss_kib(pod.pid)
    grown = after - before
    print(f"RSS {before} KiB -> {after} KiB over 100 sessions ({grown / 100:.1f} KiB per session)")
    assert grown < 4096, f"100 sessions left {grown} KiB behind"
    counter = RawClient(path)
    counter.session()
    done, _ = counter.run("len(sessions().splitlines()) - 1")
    assert done["result"] == "1"  # only this one is still known
    # and nothing of the 120 others is still alive (issue 15: sessions held by tracebacks)
    done, _ = counter.run(
        "import gc; gc.collect(); kinds = ('SocketSession', 'Session', 'Statement'); "
        "sorted((k, sum(type(o).__name__ == k and type(o).__module__.startswith('aiopod.console') "
        "for o in gc.get_objects())) for k in kinds)",
        2,
    )
    assert done["result"] == "[('Session', 1), ('SocketSession', 1), ('Statement', 1)]", done
