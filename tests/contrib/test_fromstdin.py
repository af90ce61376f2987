"""``aiopod.contrib.fromstdin.Server``: lines piped into the pod are consumed; EOF ends the flow."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.contrib.conftest import STOP_WAIT_TIME, Write, printed, start
from tests.proc import stop


def test_piped_lines_are_consumed_in_order_and_eof_ends_the_pod() -> None:
    with start("contrib_fromstdin.py", stdin=subprocess.PIPE) as proc:
        stdin = proc.popen.stdin
        assert stdin is not None
        stdin.write(b"first line\n")
        stdin.flush()
        proc.wait_for("line: first line")  # consumed while stdin is still open
        stdin.write("".join(f"line {n}\n" for n in range(2, 201)).encode() + b"no newline at the end")
        stdin.close()
        code = proc.wait()
    out = proc.output
    assert code == 0, out
    expected = ["line: first line"] + [f"line: line {n}" for n in range(2, 201)] + ["line: no newline at the end"]
    assert printed(out).splitlines() == [*expected, "stdin: 201 lines"]


def test_bytes_by_default_and_a_regular_file_as_stdin(write: Write, tmp_path: Path) -> None:
    write(
        "raw.py",
        """
        from aiopod.contrib.fromstdin import Server

        class Raw(Server):
            def consume(self, line, **kwargs):
                print(repr(line), flush=True)
        """,
    )
    config = write("config.py", "BEANS = [{'core': 'raw.Raw', 'consumer_num': 1}]\n")
    data = write("input.txt", "a\nb\n")
    with data.open("rb") as stdin, start(config, stdin=stdin.fileno()) as proc:
        code = proc.wait()
    assert code == 0, proc.output
    assert printed(proc.output).splitlines() == ["b'a\\n'", "b'b\\n'"]


def test_sigterm_while_waiting_for_input_exits_0_at_once() -> None:
    with start("contrib_fromstdin.py", stdin=subprocess.PIPE) as proc:
        stdin = proc.popen.stdin
        assert stdin is not None
        stdin.write(b"only line\n")
        stdin.flush()
        proc.wait_for("line: only line")
        code, elapsed = stop(proc)
        stdin.close()
    out = proc.output
    assert code == 0, out
    assert "stdin: 1 lines" in out
    assert "cancelling" not in out
    assert elapsed < STOP_WAIT_TIME / 2, out


def test_bad_encoding_and_line_limit_are_config_errors(write: Write) -> None:
    config = write(
        "bad.py",
        "BEANS = [{'core': 'contrib_servers.Lines', 'encoding': 'klingon', 'line_limit': 0, 'consumer_num': 'x'}]\n",
    )
    with start(config) as proc:
        code = proc.wait()
    lines = proc.output.splitlines()
    assert code == 2, proc.output
    assert lines == [
        f"aiopod: error: {config}: BEANS[0]: consumer_num: 'x' must be a whole number >= 1",
        f"aiopod: error: {config}: BEANS[0]: line_limit: 0 must be a whole number >= 1",
        f"aiopod: error: {config}: BEANS[0]: encoding: 'klingon' is not a text encoding Python knows (such as 'utf-8')",
    ]
