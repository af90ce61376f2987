"""``aiopod run`` in a real subprocess: beans, configs, options, failures and signals between beans."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import aiopod
from tests.proc import run

Write = Callable[[str, str], Path]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

ECHO = """
    async def echo(**kwargs):
        print("echo", sorted(kwargs.items()), flush=True)
"""


def test_seed_quick_start_imports_example_from_the_current_directory(tmp_path: Path) -> None:
    # The installed ``aiopod`` script, not ``python -m`` (which would put the cwd on sys.path itself).
    script = shutil.which("aiopod", path=str(Path(sys.executable).parent))
    assert script is not None, "the aiopod console script is not installed next to the interpreter"
    shutil.copy(EXAMPLES / "example.py", tmp_path / "example.py")
    proc = subprocess.run(
        [script, "run", "example.helloworld:hi=Ozzy"], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == "hello world! {'hi': 'Ozzy'}\n"


def test_several_beans_on_the_command_line_all_run(write: Write, tmp_path: Path) -> None:
    write("beans.py", ECHO + "\n    async def other():\n        print('other ran', flush=True)\n")
    code, out = run("run", "beans.echo:n=1", "beans.echo:n=2,who=b", "beans:other", cwd=tmp_path)
    assert code == 0, out
    assert "echo [('n', '1')]" in out
    assert "echo [('n', '2'), ('who', 'b')]" in out
    assert "other ran" in out


def test_escaped_comma_and_equals_are_literal_in_values(write: Write, tmp_path: Path) -> None:
    write("beans.py", ECHO)
    code, out = run("run", r"beans.echo:msg=a\,b\=c,x=1=2,path=C:\dir", cwd=tmp_path)
    assert code == 0, out
    assert r"echo [('msg', 'a,b=c'), ('path', 'C:\\dir'), ('x', '1=2')]" in out


def test_colon_and_dotted_import_strings_both_resolve_inside_a_package(write: Write, tmp_path: Path) -> None:
    write("pkg/__init__.py", "async def top(**kw):\n    print('pkg top', kw, flush=True)\n")
    write("pkg/mod.py", "async def hello(**kw):\n    print('pkg.mod hello', kw, flush=True)\n")
    write("pkg/sub/__init__.py", "")
    write("pkg/sub/deep.py", "class Holder:\n    async def bean(**kw):\n        print('deep', kw, flush=True)\n")
    code, out = run(
        "run",
        "pkg.mod:hello:via=colon",
        "pkg.mod.hello:via=dot",
        "pkg:top:via=colon",
        "pkg.top:via=dot",
        "pkg.sub.deep:Holder.bean:via=colon",
        cwd=tmp_path,
    )
    assert code == 0, out
    for line in (
        "pkg.mod hello {'via': 'colon'}",
        "pkg.mod hello {'via': 'dot'}",
        "pkg top {'via': 'colon'}",
        "pkg top {'via': 'dot'}",
        "deep {'via': 'colon'}",
    ):
        assert line in out


KINDS = """
    import asyncio

    from aiopod import pass_context
    from aiopod.decorators import pass_context as seed_pass_context


    async def function(**kwargs):
        print("function kwargs", sorted(kwargs.items()), flush=True)


    coroutine_object = function(made="at import")


    class Klass:
        def __init__(self, context):
            self.context = context

        async def __call__(self, **kwargs):
            print("class", self.context.label, self.context.instance is self, sorted(kwargs.items()), flush=True)


    @pass_context
    async def bare(context, **kwargs):
        print("bare", context.label, sorted(kwargs.items()), flush=True)


    @seed_pass_context(label="named")
    async def named(context, **kwargs):
        print("named", context.label, sorted(kwargs.items()), flush=True)


    @pass_context
    async def census(context):
        await asyncio.gather(*(b.wait() for b in context.pod.beans if b is not context.bean))
        for bean in context.pod.beans:
            print("census", bean.id, bean.label, bean.kind.value, bean.state.value, flush=True)
"""

KINDS_CONFIG = """
    BEANS = [
        {"core": "kinds:coroutine_object", "label": "obj"},
        {"core": "kinds.function", "label": "fn", "answer": 42, "name": "Ozzy"},
        {"core": "kinds:Klass", "label": "cls", "interval": 0.5},
        {"core": "kinds.bare", "colour": "red"},
        {"core": "kinds.named", "size": 3},
        {"core": "kinds.named", "label": "renamed"},
        {"core": "kinds.census"},
    ]
"""


def test_config_runs_all_four_bean_kinds_with_their_kwargs_and_labels(write: Write, tmp_path: Path) -> None:
    write("kinds.py", KINDS)
    write("pod.py", KINDS_CONFIG)
    code, out = run("run", "-c", "pod.py", cwd=tmp_path)
    assert code == 0, out
    assert "function kwargs [('made', 'at import')]" in out
    assert "function kwargs [('answer', 42), ('name', 'Ozzy')]" in out
    assert "class cls True [('interval', 0.5)]" in out
    assert "bare None [('colour', 'red')]" in out
    assert "named named [('size', 3)]" in out
    assert "named renamed []" in out  # a label in the config wins over the decorator's
    census = re.findall(r"^census .*$", out, re.MULTILINE)
    assert census == [
        "census 1 obj coroutine object finished",
        "census 2 fn coroutine function finished",
        "census 3 cls class with async __call__ finished",
        "census 4 None @pass_context function finished",
        "census 5 named @pass_context function finished",
        "census 6 renamed @pass_context function finished",
        "census 7 None @pass_context function running",
    ]


def test_upper_case_config_names_are_readable_from_beans_and_others_are_not(write: Write, tmp_path: Path) -> None:
    write(
        "beans.py",
        """
        from aiopod import pass_context

        @pass_context
        async def show(context):
            config = context.config
            print("GREETING", config.GREETING, config["ANSWER"], flush=True)
            for name in ("lower", "_PRIVATE", "Mixed", "json"):
                print(name, name in config, hasattr(config, name), flush=True)
            try:
                config.lower
            except AttributeError as exc:
                print("error:", exc, flush=True)
        """,
    )
    write(
        "pod.py",
        """
        import json

        GREETING = "Hello"
        ANSWER = 42
        lower = "no"
        _PRIVATE = "no"
        Mixed = "no"
        BEANS = [{"core": "beans.show"}]
        """,
    )
    code, out = run("run", "-c", "pod.py", cwd=tmp_path)
    assert code == 0, out
    assert "GREETING Hello 42" in out
    for name in ("lower", "_PRIVATE", "Mixed", "json"):
        assert f"{name} False False" in out
    assert "error: config has no 'lower' (it has: ANSWER, BEANS, BEAN_HISTORY, DEBUG, GREETING, LOG_LEVEL," in out


def test_config_file_of_a_bean_merges_its_names_into_that_beans_kwargs_only(write: Write, tmp_path: Path) -> None:
    write(
        "beans.py",
        """
        from aiopod import pass_context

        @pass_context
        async def show(context, **kwargs):
            print(context.label, sorted(kwargs.items()), "SIZE" in context.config, flush=True)
        """,
    )
    # A relative config_file is found beside the config, not in the cwd.
    write("conf/extra.py", 'SIZE = 3\nCOLOUR = "blue"\nlower = "hidden"\n_PRIVATE = "hidden"\n')
    write(
        "conf/pod.py",
        """
        BEANS = [
            {"core": "beans.show", "label": "with", "config_file": "extra.py", "COLOUR": "red", "n": 1},
            {"core": "beans.show", "label": "without", "n": 2},
        ]
        """,
    )
    code, out = run("run", "-c", "conf/pod.py", cwd=tmp_path)
    assert code == 0, out
    # every public name of the file, lower-case too; the file wins (as in the seed) and says so
    assert "with [('COLOUR', 'blue'), ('SIZE', 3), ('lower', 'hidden'), ('n', 1)] False" in out
    assert "aiopod: warning: conf/pod.py: BEANS[0]: 'COLOUR' = 'red' is overridden by extra.py (COLOUR = 'blue')" in out
    assert "without [('n', 2)] False" in out


PRINT_SETTINGS = """
    import logging

    from aiopod import pass_context

    @pass_context
    async def show(context):
        c = context.config
        print("settings", repr(c.STOP_WAIT_TIME), c.LOG_LEVEL, repr(c.GREETING), flush=True)
        logging.getLogger("aiopod.probe").info("probe at info")
"""


@pytest.mark.parametrize(
    ("with_file", "env", "options", "expected", "info_logged"),
    [
        (False, {}, [], "settings 5.0 INFO 'default'", True),
        (True, {}, [], "settings 3.0 WARNING 'file'", False),
        (True, {"AIOPOD_STOP_WAIT_TIME": "2", "AIOPOD_LOG_LEVEL": "error", "AIOPOD_GREETING": "env"}, [],
         "settings 2.0 ERROR 'env'", False),
        (True, {"AIOPOD_STOP_WAIT_TIME": "2", "AIOPOD_LOG_LEVEL": "error", "AIOPOD_GREETING": "env"},
         ["--stop-wait-time", "1", "--log-level", "debug"], "settings 1.0 DEBUG 'env'", True),
        (False, {"AIOPOD_STOP_WAIT_TIME": "none"}, ["-l", "INFO"], "settings None INFO 'default'", True),
    ],
    ids=["defaults", "file-over-defaults", "env-over-file", "options-over-env", "env-none"],
)  # fmt: skip
def test_settings_precedence_is_defaults_then_file_then_env_then_options(
    write: Write,
    tmp_path: Path,
    with_file: bool,
    env: dict[str, str],
    options: list[str],
    expected: str,
    info_logged: bool,
) -> None:
    write("beans.py", PRINT_SETTINGS)
    config = ["-c", "pod.py"] if with_file else []
    if with_file:
        write(
            "pod.py", 'STOP_WAIT_TIME = 3\nLOG_LEVEL = "WARNING"\nGREETING = "file"\nBEANS = [{"core": "beans.show"}]\n'
        )
    else:
        env = {**env, "AIOPOD_GREETING": "default"}
    beans = [] if with_file else ["beans.show"]
    code, out = run("run", *config, *options, *beans, cwd=tmp_path, env=env)
    assert code == 0, out
    assert expected in out
    assert ("probe at info" in out) is info_logged  # the level really applies to logging


def test_version_option_prints_the_package_version(tmp_path: Path) -> None:
    code, out = run("--version", cwd=tmp_path)
    assert code == 0, out
    assert out == f"aiopod, version {aiopod.__version__}\n"


def test_python_dash_m_aiopod_help_lists_the_commands_and_run_options(tmp_path: Path) -> None:
    code, out = run("--help", cwd=tmp_path)
    assert code == 0, out
    assert out.startswith("Usage: aiopod [OPTIONS] COMMAND [ARGS]...")
    commands = re.findall(r"^  (\w+)  ", out.split("Commands:")[1], re.MULTILINE)
    assert commands == ["attach", "ps", "run", "shell"], out
    assert re.search(r"^\s+run\s+Run beans headless", out, re.MULTILINE), out
    code, out = run("run", "--help", cwd=tmp_path)
    assert code == 0, out
    for option in ("--config", "--log-level", "--loop-type", "--stop-wait-time", "--debug", "--telnet"):
        assert option in out


@pytest.mark.parametrize(
    ("loop_type", "expected"),
    [
        ("asyncio", "<class 'asyncio.unix_events._UnixSelectorEventLoop'>"),
        ("uvloop", "<class 'uvloop.Loop'>"),
        ("auto", "<class 'uvloop.Loop'>"),  # uvloop is installed in the test environment
    ],
)
def test_loop_type_option_selects_the_event_loop(write: Write, tmp_path: Path, loop_type: str, expected: str) -> None:
    pytest.importorskip("uvloop")
    write("beans.py", "import asyncio\n\nasync def loop():\n    print(type(asyncio.get_running_loop()), flush=True)\n")
    code, out = run("run", "--loop-type", loop_type, "beans.loop", cwd=tmp_path)
    assert code == 0, out
    assert expected in out.splitlines(), out


FAILING = """
    from aiopod import pass_context

    async def boom():
        raise ValueError("kaboom")

    class BadInit:
        def __init__(self, context):
            raise RuntimeError("no instance today")

        async def __call__(self):
            pass

    @pass_context
    async def survivor(context):
        await context.wait_beans_done("boom")
        await context.wait_beans_done("bad-init")
        states = [b.state.value for b in context.get_beans("boom") + context.get_beans("bad-init")]
        print("survivor saw", states, flush=True)
"""


def test_failing_bean_is_logged_once_and_exits_1_after_the_others_end(write: Write, tmp_path: Path) -> None:
    write("beans.py", FAILING)
    write(
        "pod.py",
        """
        BEANS = [
            {"core": "beans:boom", "label": "boom"},
            {"core": "beans.BadInit", "label": "bad-init"},
            {"core": "beans.survivor"},
        ]
        """,
    )
    code, out = run("run", "-c", "pod.py", cwd=tmp_path)
    assert code == 1, out
    assert out.count("Traceback (most recent call last)") == 2, out
    assert out.count("ValueError: kaboom") == 1
    assert out.count("RuntimeError: no instance today") == 1
    assert "bean #1 'boom' (beans:boom) failed" in out
    assert "bean #2 'bad-init' (beans.BadInit) failed" in out
    assert "never retrieved" not in out
    assert "survivor saw ['failed', 'failed']" in out
    assert out.index("ValueError: kaboom") < out.index("survivor saw")


HOT_ADD = """
    from aiopod import pass_context

    async def child(n):
        print("child ran with", n, flush=True)
        return n

    @pass_context
    async def parent(context):
        by_object = context.pod.add_bean(child, label="child", n=1)
        by_string = context.pod.add_bean("beans:child", n=2)
        for bean in (by_object, by_string):
            print("added", type(bean).__name__, bean.id, bean.label, bean.state.value, type(bean.task).__name__,
                  flush=True)
        await context.wait_beans_done("child")
        await by_string.wait()
        print("results", by_object.task.result(), by_string.task.result(), by_string.state.value, flush=True)
"""


def test_bean_hot_adds_beans_whose_tasks_run(write: Write, tmp_path: Path) -> None:
    write("beans.py", HOT_ADD)
    code, out = run("run", "beans.parent", cwd=tmp_path)
    assert code == 0, out
    assert "added Bean 2 child running Task" in out
    assert "added Bean 3 None running Task" in out
    assert "child ran with 1" in out
    assert "child ran with 2" in out
    assert "results 1 2 finished" in out


CANCEL = """
    import asyncio

    from aiopod import pass_context

    ready = asyncio.Event()

    async def sleeper():
        ready.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            print("sleeper cancelled", flush=True)
            raise

    @pass_context
    async def controller(context):
        await ready.wait()
        cancelled = context.pod.cancel("sleeper")
        print("cancel returned", [(b.id, b.label) for b in cancelled], flush=True)
        await context.wait_beans_done("sleeper")
        print("sleeper state", cancelled[0].state.value, flush=True)
        try:
            context.pod.cancel("nope")
        except LookupError as exc:
            print("lookup error:", type(exc).__name__, exc, flush=True)
"""


def test_pod_cancel_by_label_and_unknown_label_lists_existing_labels(write: Write, tmp_path: Path) -> None:
    write("beans.py", CANCEL)
    write("pod.py", 'BEANS = [{"core": "beans.sleeper", "label": "sleeper"}, {"core": "beans.controller"}]\n')
    code, out = run("run", "-c", "pod.py", cwd=tmp_path)
    assert code == 0, out
    assert "sleeper cancelled" in out
    assert "cancel returned [(1, 'sleeper')]" in out
    assert "sleeper state cancelled" in out
    assert "lookup error: BeanNotFound no bean with label 'nope'; there are ids 1-2 and labels 'sleeper'" in out


SIGNALS = """
    import asyncio

    from aiopod import pass_context

    registered = []
    everyone_ready = asyncio.Event()
    done = asyncio.Event()

    def ready(name):
        registered.append(name)
        if len(registered) == 4:
            everyone_ready.set()

    @pass_context
    async def sync_web(context):
        def on_reload(signal, **kwargs):
            print("plain-handler got", signal, sorted(kwargs.items()), flush=True)
            return "sync-ok"
        await context.add_signal_handler("reload", on_reload)
        ready("sync_web")
        await done.wait()

    @pass_context
    async def async_web(context):
        async def on_reload(signal, n, **kwargs):
            await asyncio.sleep(0)
            print("async-handler got", signal, n, flush=True)
            return f"async-ok {n}"
        await context.add_signal_handler("reload", on_reload)
        ready("async_web")
        await done.wait()

    @pass_context
    async def broken_web(context):
        def on_reload(**kwargs):
            raise RuntimeError("reload broke")
        await context.add_signal_handler("reload", on_reload)
        ready("broken_web")
        await done.wait()

    @pass_context
    async def worker(context):
        def on_reload(signal, n, **kwargs):
            print("worker got", signal, n, flush=True)
            return "worker-ok"
        await context.add_signal_handler("reload", on_reload)
        ready("worker")
        await done.wait()

    def show(results):
        return sorted((r.bean.label, r.bean.id, r.value, repr(r.error)) for r in results)

    @pass_context
    async def sender(context):
        await everyone_ready.wait()
        print("targeted", show(await context.send_signal("reload", labels=["web"], n=1)), flush=True)
        print("by string", show(await context.send_signal("reload", labels="worker", n=2)), flush=True)
        print("unknown label", show(await context.send_signal("reload", labels=["nobody"], n=3)), flush=True)
        print("unknown signal", show(await context.send_signal("nobody-listens")), flush=True)
        done.set()
"""


def test_targeted_signal_reaches_only_labelled_beans_and_survives_a_failing_handler(
    write: Write, tmp_path: Path
) -> None:
    write("beans.py", SIGNALS)
    write(
        "pod.py",
        """
        BEANS = [
            {"core": "beans.sync_web", "label": "web"},
            {"core": "beans.async_web", "label": "web"},
            {"core": "beans.broken_web", "label": "web"},
            {"core": "beans.worker", "label": "worker"},
            {"core": "beans.sender", "label": "sender"},
        ]
        """,
    )
    code, out = run("run", "-c", "pod.py", cwd=tmp_path)
    assert code == 0, out  # a failing handler is logged, it does not fail the pod
    assert "plain-handler got reload [('n', 1)]" in out
    assert "async-handler got reload 1" in out
    assert "worker got reload 1" not in out
    assert (
        "targeted [('web', 1, 'sync-ok', 'None'), ('web', 2, 'async-ok 1', 'None'), "
        "('web', 3, None, \"RuntimeError('reload broke')\")]"
    ) in out
    assert "by string [('worker', 4, 'worker-ok', 'None')]" in out
    assert "worker got reload 2" in out
    assert out.count("plain-handler got") == 1 and out.count("async-handler got") == 1
    assert "unknown label []" in out
    assert "unknown signal []" in out
    assert "handler broken_web.<locals>.on_reload of bean #3 'web' (beans.broken_web) failed on signal 'reload'" in out
    assert out.count("RuntimeError: reload broke") == 1


# Every pod serves its console socket (stdlib-only modules of aiopod.console); the front ends stay out.
HEAVY = (
    "ptpython",
    "prompt_toolkit",
    "jedi",
    "uvicorn",
    "aiohttp",
    "aiopod.contrib",
    "aiopod.console.shell",
    "aiopod.console.client",
    "aiopod.console.telnet",
)


def test_headless_run_imports_no_console_or_http_server(write: Write, tmp_path: Path) -> None:
    write(
        "beans.py",
        f"""
        import sys

        async def modules():
            heavy = {HEAVY!r}
            found = sorted({{m for m in sys.modules for h in heavy if m == h or m.startswith(h + ".")}})
            print("heavy modules:", found, "aiopod.pod" in sys.modules, flush=True)
        """,
    )
    code, out = run("run", "beans.modules", cwd=tmp_path)
    assert code == 0, out
    assert "heavy modules: [] True" in out


def test_importing_aiopod_pod_pulls_in_no_cli_console_or_adapters(tmp_path: Path) -> None:
    forbidden = ("click", "ptpython", "prompt_toolkit", "aiopod.console", "aiopod.contrib", "aiopod.cli")
    code = (
        "import sys, aiopod.pod\n"
        f"forbidden = {forbidden!r}\n"
        "print(sorted({m for m in sys.modules for f in forbidden if m == f or m.startswith(f + '.')}))\n"
        "print(aiopod.pod.Pod.__module__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[]\naiopod.pod.pod\n", proc.stdout + proc.stderr
