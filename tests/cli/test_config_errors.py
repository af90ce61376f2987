"""``aiopod run`` with a broken config: exit 2, one ``aiopod: error:`` line per problem, nothing starts."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.proc import Proc, aiopod, run

Write = Callable[[str, str], Path]

BEANS = """
    async def good(**kwargs):
        print("GOOD BEAN RAN", flush=True)

    def plain(**kwargs):
        print("PLAIN RAN", flush=True)

    class Plain:
        def __init__(self, context):
            pass
"""

GOOD = "{'core': 'beans.good', 'label': 'good'}"
FIX = {
    "core": '"core": "package.module:function"',
    "bean": "give a coroutine function, a coroutine object, a class with 'async def __call__', "
    "or an @pass_context async function",
}

# (id, config source, the exact error lines after "aiopod: error: ")
CASES = [
    ("syntax-error", "GREETING = 'hi'\nBEANS = [\n", ["bad.py:2: syntax error: '[' was never closed"]),
    (
        "error-while-running-the-config",
        f"BEANS = [{GOOD}]\nPORT = int('eighty')\n",
        ["bad.py:2: ValueError: invalid literal for int() with base 10: 'eighty'"],
    ),
    ("beans-not-a-list", "BEANS = {'core': 'beans.good'}\n", ["bad.py: BEANS must be a list of dicts, got dict"]),
    (
        "entry-not-a-dict",
        f"BEANS = [{GOOD}, 'beans.good']\n",
        ["bad.py: BEANS[1]: must be a dict with a 'core' key, got str"],
    ),
    (
        "entry-without-core",
        f"BEANS = [{GOOD}, {{'label': 'x', 'port': 1}}]\n",
        [f"bad.py: BEANS[1]: missing 'core'; add {FIX['core']}"],
    ),
    (
        "unknown-module",
        f"BEANS = [{GOOD}, {{'core': 'nosuch_module_xyz.serve'}}]\n",
        [
            "bad.py: BEANS[1].core: cannot import 'nosuch_module_xyz.serve': no module named 'nosuch_module_xyz' "
            "(is it installed, or is the current directory the one holding it?)"
        ],
    ),
    (
        "unknown-attribute",
        f"BEANS = [{GOOD}, {{'core': 'beans:nothere'}}]\n",
        ["bad.py: BEANS[1].core: cannot import 'beans:nothere': module 'beans' has no attribute 'nothere'"],
    ),
    (
        "plain-function",
        f"BEANS = [{GOOD}, {{'core': 'beans.plain'}}]\n",
        [f"bad.py: BEANS[1].core: 'beans.plain': a plain (not async) function is not a bean: {FIX['bean']}"],
    ),
    (
        "plain-class",
        f"BEANS = [{GOOD}, {{'core': 'beans:Plain'}}]\n",
        [
            "bad.py: BEANS[1].core: 'beans:Plain': class Plain has no 'async def __call__(self, **kwargs)'; "
            "a bean class needs __init__(self, context) and an async __call__"
        ],
    ),
    (
        "not-callable",
        f"BEANS = [{GOOD}, {{'core': 'beans.__name__'}}]\n",
        [f"bad.py: BEANS[1].core: 'beans.__name__': str is not a bean: {FIX['bean']}"],
    ),
    (
        "bad-log-level",
        f"LOG_LEVEL = 'LOUD'\nBEANS = [{GOOD}]\n",
        ["bad.py: LOG_LEVEL 'LOUD' is not a level; use DEBUG, INFO, WARNING, ERROR or CRITICAL"],
    ),
    (
        "bad-loop-type",
        f"LOOP_TYPE = 'tokio'\nBEANS = [{GOOD}]\n",
        ["bad.py: LOOP_TYPE 'tokio' is not one of asyncio, uvloop, auto"],
    ),
    (
        "bad-stop-wait-time",
        f"STOP_WAIT_TIME = 'soon'\nBEANS = [{GOOD}]\n",
        ["bad.py: STOP_WAIT_TIME 'soon' is not a number of seconds >= 0 (or None to wait for ever)"],
    ),
    (
        "negative-stop-wait-time",
        f"STOP_WAIT_TIME = -1\nBEANS = [{GOOD}]\n",
        ["bad.py: STOP_WAIT_TIME -1 is not a number of seconds >= 0 (or None to wait for ever)"],
    ),
    ("bad-debug", f"DEBUG = 'yes'\nBEANS = [{GOOD}]\n", ["bad.py: DEBUG 'yes' must be True or False"]),
    (
        "bad-restart-policy",
        f"BEANS = [{GOOD}, {{'core': 'beans.good', 'restart': 'sometimes'}}]\n",
        ["bad.py: BEANS[1].restart: policy 'sometimes' is not one of 'no', 'on-failure', 'always'"],
    ),
    (
        "bad-restart-dict",
        f"BEANS = [{GOOD}, {{'core': 'beans.good', 'restart': {{'policy': 'always', 'max': -1, 'tries': 3}}}}]\n",
        [
            "bad.py: BEANS[1].restart: unknown keys ['tries']; allowed: policy, max, window, backoff",
            "bad.py: BEANS[1].restart: max -1 must be a number >= 0",
        ],
    ),
    (
        "missing-bean-config-file",
        f"BEANS = [{GOOD}, {{'core': 'beans.good', 'config_file': 'settings.py'}}]\n",
        ["bad.py: BEANS[1].config_file: settings.py: no such config file (check the path and the current directory)"],
    ),
    (
        "bad-label",
        f"BEANS = [{GOOD}, {{'core': 'beans.good', 'label': 3}}]\n",
        ["bad.py: BEANS[1].label: 3 must be a string"],
    ),
]


def errors_of(out: str) -> list[str]:
    """The output must be error lines only; return what follows 'aiopod: error: ' on each."""
    lines = out.splitlines()
    assert lines, "no output"
    assert all(line.startswith("aiopod: error: ") for line in lines), out
    return [line.removeprefix("aiopod: error: ") for line in lines]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """Run ``aiopod run -c bad.py`` for every case at once (each in its own directory)."""
    procs = {}
    for name, source, _ in CASES:
        folder = tmp_path_factory.mktemp(name)
        (folder / "beans.py").write_text(textwrap.dedent(BEANS))
        (folder / "bad.py").write_text(source)
        procs[name] = aiopod("run", "-c", "bad.py", cwd=folder)
    try:
        return {name: (proc.wait(30), proc.output) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.kill()


@pytest.mark.parametrize(("name", "expected"), [(case[0], case[2]) for case in CASES], ids=[case[0] for case in CASES])
def test_bad_config_exits_2_with_one_line_per_problem(
    matrix: dict[str, tuple[int, str]], name: str, expected: list[str]
) -> None:
    code, out = matrix[name]
    assert code == 2, out
    assert "Traceback" not in out
    assert "GOOD BEAN RAN" not in out and "PLAIN RAN" not in out
    assert errors_of(out) == expected


def test_bad_config_reports_every_problem_at_once(write: Write, tmp_path: Path) -> None:
    write("beans.py", BEANS)
    write(
        "bad.py",
        f"""
        LOG_LEVEL = "LOUD"
        LOOP_TYPE = "tokio"
        STOP_WAIT_TIME = "soon"
        BEANS = [
            {GOOD},
            {{"label": "no-core"}},
            {{"core": "nosuch_module_xyz.f"}},
            {{"core": "beans.plain", "restart": "sometimes"}},
        ]
        """,
    )
    code, out = run("run", "-c", "bad.py", "beans.good:x=1,oops", cwd=tmp_path)
    assert code == 2, out
    assert "Traceback" not in out and "GOOD BEAN RAN" not in out
    errors = errors_of(out)
    assert errors[:3] == [
        "bad.py: LOG_LEVEL 'LOUD' is not a level; use DEBUG, INFO, WARNING, ERROR or CRITICAL",
        "bad.py: LOOP_TYPE 'tokio' is not one of asyncio, uvloop, auto",
        "bad.py: STOP_WAIT_TIME 'soon' is not a number of seconds >= 0 (or None to wait for ever)",
    ]
    assert errors[3] == f"bad.py: BEANS[1]: missing 'core'; add {FIX['core']}"
    assert errors[4].startswith("bad.py: BEANS[2].core: cannot import 'nosuch_module_xyz.f'")
    assert errors[5] == "bad.py: BEANS[3].restart: policy 'sometimes' is not one of 'no', 'on-failure', 'always'"
    assert errors[6].startswith("bad.py: BEANS[3].core: 'beans.plain': a plain (not async) function is not a bean")
    assert errors[7].startswith("bean 'beans.good:x=1,oops': 'oops' is not key=value")
    assert len(errors) == 8


def test_debug_adds_the_traceback(write: Write, tmp_path: Path) -> None:
    write("bad.py", "GREETING = 'hi'\nBEANS = [\n")
    code, out = run("run", "-c", "bad.py", "--debug", cwd=tmp_path)
    assert code == 2, out
    assert "Traceback (most recent call last)" in out
    assert "aiopod: error: bad.py:2: syntax error: '[' was never closed" in out.splitlines()


def test_missing_config_file(tmp_path: Path) -> None:
    code, out = run("run", "-c", "missing.py", cwd=tmp_path)
    assert code == 2, out
    assert errors_of(out) == ["missing.py: no such config file (check the path and the current directory)"]


def test_error_in_a_bean_module_names_that_file_and_line(write: Write, tmp_path: Path) -> None:
    broken = write("broken.py", "import asyncio\n\nasync def serve(:\n    pass\n")
    write("fails_on_import.py", "import os\nPORT = int(os.environ['NO_SUCH_VARIABLE_XYZ'])\n")
    write("bad.py", "BEANS = [{'core': 'broken.serve'}, {'core': 'fails_on_import:serve'}]\n")
    code, out = run("run", "-c", "bad.py", cwd=tmp_path)
    assert code == 2, out
    assert "Traceback" not in out
    first, second = errors_of(out)
    assert first.startswith(f"bad.py: BEANS[0].core: cannot import 'broken.serve': {broken.resolve()}:3: "), first
    assert second == (
        "bad.py: BEANS[1].core: cannot import 'fails_on_import:serve': "
        f"{(tmp_path / 'fails_on_import.py').resolve()}:2: KeyError: 'NO_SUCH_VARIABLE_XYZ'"
    )


def test_bad_options_and_environment_name_where_they_came_from(write: Write, tmp_path: Path) -> None:
    write("beans.py", BEANS)
    code, out = run("run", "--log-level", "LOUD", "beans.good", cwd=tmp_path)
    assert code == 2, out
    assert errors_of(out) == [
        "--log-level: LOG_LEVEL 'LOUD' is not a level; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
    ]
    code, out = run("run", "beans.good", cwd=tmp_path, env={"AIOPOD_STOP_WAIT_TIME": "soon"})
    assert code == 2, out
    assert errors_of(out) == [
        "AIOPOD_STOP_WAIT_TIME: STOP_WAIT_TIME 'soon' is not a number of seconds >= 0 (or None to wait for ever)"
    ]
    code, out = run("run", "beans.good", cwd=tmp_path, env={"AIOPOD_DEBUG": "maybe"})
    assert code == 2, out
    assert errors_of(out) == ["AIOPOD_DEBUG='maybe': use 1/0, true/false, yes/no or on/off"]


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        (
            "nosuch_module_xyz.f",
            "bean 'nosuch_module_xyz.f': cannot import 'nosuch_module_xyz.f': no module named 'nosuch_module_xyz' "
            "(is it installed, or is the current directory the one holding it?)",
        ),
        (
            "beans.good:a=1,oops",
            r"bean 'beans.good:a=1,oops': 'oops' is not key=value (escape a literal ',' or '=' in a value as \, or \=)",
        ),
        ("not a bean", "bean 'not a bean': expected 'package.module.function[:key=value,...]'"),
    ],
)
def test_bad_quick_start_bean(write: Write, tmp_path: Path, arg: str, expected: str) -> None:
    write("beans.py", BEANS)
    code, out = run("run", arg, cwd=tmp_path)
    assert code == 2, out
    assert errors_of(out) == [expected]


def test_nothing_to_run(write: Write, tmp_path: Path) -> None:
    nothing = ["nothing to run: give -c CONFIG with BEANS, or beans such as 'example.helloworld'"]
    code, out = run("run", cwd=tmp_path)
    assert code == 2, out
    assert errors_of(out) == nothing
    write("empty.py", "GREETING = 'hi'\nBEANS = []\n")
    code, out = run("run", "-c", "empty.py", cwd=tmp_path)
    assert code == 2, out
    assert errors_of(out) == nothing


def test_a_good_config_beside_the_bad_ones_runs(write: Write, tmp_path: Path) -> None:
    # The control for the tests above: this setup does print when the config is good.
    write("beans.py", BEANS)
    write("good.py", f"BEANS = [{GOOD}]\n")
    code, out = run("run", "-c", "good.py", cwd=tmp_path)
    assert code == 0, out
    assert out == "GOOD BEAN RAN\n"


def test_loop_type_uvloop_when_uvloop_is_missing(write: Write, tmp_path: Path) -> None:
    # uvloop is installed here: hide it (a None entry in sys.modules makes the import fail).
    write("beans.py", BEANS)
    script = (
        "import sys; sys.modules['uvloop'] = None; from aiopod.cli import main; "
        "sys.argv = ['aiopod', 'run', '--loop-type', 'uvloop', 'beans.good']; main()"
    )
    proc = Proc([sys.executable, "-c", script], cwd=tmp_path)
    code = proc.wait(30)
    assert code == 2, proc.output
    assert errors_of(proc.output) == [
        "LOOP_TYPE 'uvloop': uvloop is not installed; pip install 'aiopod[uvloop]' or use asyncio"
    ]


# -- malformed input (issue 15, item 17): exit 2, one clear line per problem, no traceback, no hang --

BIG = repr(10**400)[:37] + "..."
TOO_LARGE = "is too large (at most 1e+09 s); use None to wait for ever"
BOOM = "class Boom(BaseException):\n    pass\n\nraise Boom('no')\n"


def _fifo(folder: Path) -> str:
    os.mkfifo(folder / "fifo.py")
    return "fifo.py"


def _symlink_loop(folder: Path) -> str:
    (folder / "loop.py").symlink_to(folder / "loop.py")
    return "loop.py"


def _directory(folder: Path) -> str:
    (folder / "conf").mkdir()
    return "conf"


# (id, files beside beans.py, what -c names: a file name or a setup(folder) -> name, the error lines)
MALFORMED: list[tuple[str, dict[str, str], Any, list[str]]] = [
    (
        "stop-wait-time-10**400",
        {"bad.py": "STOP_WAIT_TIME = 10**400\n"},
        "bad.py",
        [f"bad.py: STOP_WAIT_TIME {BIG} {TOO_LARGE}"],
    ),
    (
        "stop-wait-time-1e300",
        {"bad.py": "STOP_WAIT_TIME = 1e300\n"},
        "bad.py",
        [f"bad.py: STOP_WAIT_TIME 1e+300 {TOO_LARGE}"],
    ),
    (
        "stop-wait-time-nan",
        {"bad.py": "STOP_WAIT_TIME = float('nan')\n"},
        "bad.py",
        ["bad.py: STOP_WAIT_TIME nan is not a number of seconds >= 0 (or None to wait for ever)"],
    ),
    (
        "config-file-5",
        {"bad.py": "BEANS = [{'core': 'beans.good', 'config_file': 5}]\n"},
        "bad.py",
        ["bad.py: BEANS[0].config_file: 5 must be a path to a Python file (a string)"],
    ),
    (
        "pcflow-consumer-num-inf",
        {"bad.py": "BEANS = [{'core': 'aiopod.contrib.pcflow.Server', 'consumer_num': float('inf')}]\n"},
        "bad.py",
        ["bad.py: BEANS[0]: consumer_num: inf must be a whole number >= 1"],
    ),
    (
        "100k-deep-unary-minus",
        {"bad.py": "X = " + "-" * 100_000 + "1\n"},
        "bad.py",
        ["bad.py: an expression is nested too deeply to compile; simplify it"],
    ),
    ("config-raises-a-base-exception", {"bad.py": BOOM}, "bad.py", ["bad.py:4: Boom: no"]),
    (
        "config-raises-system-exit-9",
        {"bad.py": "import sys\nsys.exit(9)\n"},
        "bad.py",
        ["bad.py:2: raised SystemExit(9); a config or bean module must not exit"],
    ),
    (
        "config-raises-keyboard-interrupt",
        {"bad.py": "raise KeyboardInterrupt\n"},
        "bad.py",
        ["bad.py:1: raised KeyboardInterrupt while loading"],
    ),
    (
        "bean-module-raises-a-base-exception",
        {"boom.py": BOOM, "bad.py": "BEANS = [{'core': 'boom.serve'}]\n"},
        "bad.py",
        ["bad.py: BEANS[0].core: cannot import 'boom.serve': {dir}/boom.py:4: Boom: no"],
    ),
    (
        "bean-module-raises-system-exit",
        {"boom.py": "raise SystemExit(3)\n", "bad.py": "BEANS = [{'core': 'boom.serve'}]\n"},
        "bad.py",
        [
            "bad.py: BEANS[0].core: cannot import 'boom.serve': "
            "{dir}/boom.py:1: SystemExit(3) while importing; a bean module must not exit"
        ],
    ),
    (
        "restart-nan-and-inf",
        {
            "bad.py": "nan, inf = float('nan'), float('inf')\nBEANS = [\n"
            "    {'core': 'beans.good', 'restart': {'policy': 'always', 'backoff': nan}},\n"
            "    {'core': 'beans.good', 'restart': {'policy': 'always', 'window': nan}},\n"
            "    {'core': 'beans.good', 'restart': {'policy': 'always', 'backoff': inf}},\n"
            "]\n"
        },
        "bad.py",
        [
            "bad.py: BEANS[0].restart: backoff nan must be a number >= 0",
            "bad.py: BEANS[1].restart: window nan must be a number >= 0",
            "bad.py: BEANS[2].restart: backoff inf must be finite",
        ],
    ),
    (
        "restart-10**400",
        {"bad.py": "BEANS = [{'core': 'beans.good', 'restart': {'window': 10**400}}]\n"},
        "bad.py",
        ["bad.py: BEANS[0].restart: window is too large (at most 1e+15)"],
    ),
    ("symlink-loop", {}, _symlink_loop, ["loop.py: cannot read: Too many levels of symbolic links"]),
    (
        "dev-zero",
        {},
        "/dev/zero",
        ["/dev/zero: not a regular file (a FIFO, socket or device); give a Python config file"],
    ),
    ("fifo", {}, _fifo, ["fifo.py: not a regular file (a FIFO, socket or device); give a Python config file"]),
    ("directory", {}, _directory, ["conf: is a directory; give the Python config file inside it"]),
]


@pytest.fixture(scope="module")
def malformed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, Path]]:
    """Run ``aiopod run -c ...`` for every malformed case at once (each in its own directory)."""
    procs = {}
    for name, files, config, _ in MALFORMED:
        folder = tmp_path_factory.mktemp(name).resolve()
        (folder / "beans.py").write_text(textwrap.dedent(BEANS))
        for file, source in files.items():
            (folder / file).write_text(source)
        procs[name] = (aiopod("run", "-c", config if isinstance(config, str) else config(folder), cwd=folder), folder)
    try:
        # A FIFO or /dev/zero must not hang (or fill memory): 30 s is far more than any case needs.
        return {name: (proc.wait(30), proc.output, folder) for name, (proc, folder) in procs.items()}
    finally:
        for proc, _ in procs.values():
            proc.kill()


@pytest.mark.parametrize(
    ("name", "expected"), [(case[0], case[3]) for case in MALFORMED], ids=[case[0] for case in MALFORMED]
)
def test_malformed_input_exits_2_with_one_clear_line_per_problem(
    malformed: dict[str, tuple[int, str, Path]], name: str, expected: list[str]
) -> None:
    code, out, folder = malformed[name]
    assert code == 2, out
    assert "Traceback" not in out and "Aborted!" not in out
    assert errors_of(out) == [line.replace("{dir}", str(folder)) for line in expected]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("soon", "is not a number of seconds >= 0 (or None to wait for ever)"),
        ("nan", "is not a number of seconds >= 0 (or None to wait for ever)"),
        ("1e300", TOO_LARGE),
    ],
)
def test_a_bad_stop_wait_time_option_is_one_line_naming_the_option(
    write: Write, tmp_path: Path, value: str, reason: str
) -> None:
    write("beans.py", BEANS)
    code, out = run("run", "--stop-wait-time", value, "beans.good", cwd=tmp_path)
    assert code == 2, out
    assert errors_of(out) == [f"--stop-wait-time: STOP_WAIT_TIME {value!r} {reason}"]
