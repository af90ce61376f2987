from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aiopod.pod import ChecksKwargs, Config, ConfigError, Kind, Pod, load, parse_bean_arg, read_config_file
from aiopod.pod.config import parse_kwargs

BEANMOD = """
    import asyncio

    from aiopod import pass_context

    async def echo(**kwargs):
        return kwargs

    @pass_context(label="greeter")
    async def greet(context, **kwargs):
        return kwargs

    def plain(**kwargs):
        return kwargs
"""


@pytest.fixture
def beanmod(module: Callable[[str, str], Path]) -> str:
    module("beanmod", BEANMOD)
    return "beanmod"


# -- parse_kwargs / parse_bean_arg ------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "pairs"),
    [
        ("", []),
        ("a=1", [("a", "1")]),
        ("a=1,b=two", [("a", "1"), ("b", "two")]),
        (r"a=x\,y", [("a", "x,y")]),
        (r"a=x\=y", [("a", "x=y")]),
        ("a=x=y", [("a", "x=y")]),  # only the first '=' splits
        (r"a=c:\\dir", [("a", "c:\\dir")]),
        (r"a=\n", [("a", "\\n")]),  # other escapes are kept as written
        ("a=", [("a", "")]),
        ("flag", [(None, "flag")]),
        ("a=1,,b=2", [("a", "1"), ("b", "2")]),
        ("url=http://h:80/p?q=1", [("url", "http://h:80/p?q=1")]),
    ],
)
def test_parse_kwargs_splits_pairs_and_honours_escapes(raw: str, pairs: list[tuple[str | None, str]]) -> None:
    assert parse_kwargs(raw) == pairs


def test_parse_bean_arg_dotted_core_without_kwargs(beanmod: str) -> None:
    spec = parse_bean_arg("beanmod.echo")
    assert spec.core == "beanmod.echo"
    assert spec.kind is Kind.FUNCTION
    assert spec.kwargs == {}
    assert spec.label is None
    assert spec.obj is __import__("beanmod").echo


def test_parse_bean_arg_dotted_core_with_kwargs_and_escapes(beanmod: str) -> None:
    spec = parse_bean_arg(r"beanmod.echo:hi=Ozzy,n=2,text=a\,b\=c")
    assert spec.core == "beanmod.echo"
    assert spec.kwargs == {"hi": "Ozzy", "n": "2", "text": "a,b=c"}


def test_parse_bean_arg_colon_core(beanmod: str) -> None:
    spec = parse_bean_arg("beanmod:echo")
    assert spec.core == "beanmod:echo"
    assert spec.kwargs == {}
    assert spec.kind is Kind.FUNCTION


def test_parse_bean_arg_colon_core_with_kwargs(beanmod: str) -> None:
    spec = parse_bean_arg("beanmod:echo:k=v,k2=v2")
    assert spec.core == "beanmod:echo"
    assert spec.kwargs == {"k": "v", "k2": "v2"}


@pytest.mark.parametrize("core", ["beanmod.echo", "beanmod:echo"])
def test_parse_bean_arg_values_may_contain_colons(beanmod: str, core: str) -> None:
    spec = parse_bean_arg(f"{core}:url=http://127.0.0.1:8080/x,dsn=pg://u:p@h/db")
    assert spec.core == core
    assert spec.kwargs == {"url": "http://127.0.0.1:8080/x", "dsn": "pg://u:p@h/db"}


def test_parse_bean_arg_uses_the_pass_context_label(beanmod: str) -> None:
    spec = parse_bean_arg("beanmod.greet:x=1")
    assert spec.kind is Kind.PASS_CONTEXT
    assert spec.label == "greeter"
    assert spec.kwargs == {"x": "1"}


@pytest.mark.parametrize("arg", ["beanmod.echo:a=1,oops", "beanmod.echo:a=1,=2", "beanmod.echo:a b=1"])
def test_parse_bean_arg_rejects_pairs_that_are_not_key_value(beanmod: str, arg: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_bean_arg(arg)
    message = str(info.value)
    assert repr(arg) in message
    assert "is not key=value" in message
    assert r"\," in message  # says how to escape


@pytest.mark.parametrize("arg", ["", "not an import", "mod/with/slash"])
def test_parse_bean_arg_rejects_what_is_not_an_import_string(arg: str) -> None:
    with pytest.raises(ConfigError, match=r"expected 'package\.module\.function"):
        parse_bean_arg(arg)


def test_parse_bean_arg_unknown_module(beanmod: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_bean_arg("nosuchmodule_xyz.func:a=1")
    assert info.value.problems == [
        "bean 'nosuchmodule_xyz.func:a=1': cannot import 'nosuchmodule_xyz.func': no module named "
        "'nosuchmodule_xyz' (is it installed, or is the current directory the one holding it?)"
    ]


def test_parse_bean_arg_unknown_attribute(beanmod: str) -> None:
    with pytest.raises(ConfigError, match=r"bean 'beanmod:nothere': cannot import 'beanmod:nothere'.*nothere"):
        parse_bean_arg("beanmod:nothere")


def test_parse_bean_arg_rejects_what_is_not_a_bean(beanmod: str) -> None:
    with pytest.raises(ConfigError, match=r"'beanmod.plain': a plain \(not async\) function is not a bean"):
        parse_bean_arg("beanmod.plain")


# -- read_config_file ---------------------------------------------------------------------


def test_read_config_file_returns_only_public_upper_case_names(write: Callable[[str, str], Path]) -> None:
    path = write(
        "cfg.py",
        """
        import os
        GREETING = "hi"
        HTTP2 = True
        MAX_SIZE = 3
        _PRIVATE = 1
        lower = 2
        Mixed = 3
        def helper():
            return 1
        DERIVED = helper() + MAX_SIZE
        """,
    )
    assert read_config_file(path) == {"GREETING": "hi", "HTTP2": True, "MAX_SIZE": 3, "DERIVED": 4}


def test_read_config_file_sees_its_own_file(write: Callable[[str, str], Path]) -> None:
    path = write("cfg.py", "import os\nHERE = os.path.dirname(__file__)\n")
    assert read_config_file(path) == {"HERE": str(path.parent.resolve())}


def test_read_config_file_syntax_error_names_file_and_line(write: Callable[[str, str], Path]) -> None:
    path = write("cfg.py", "A = 1\nB = 2\nC = (\n")
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    assert info.value.problems == [f"{path}:3: syntax error: '(' was never closed"]
    assert isinstance(info.value, ValueError)


def test_read_config_file_runtime_error_names_file_and_line(write: Callable[[str, str], Path]) -> None:
    path = write("cfg.py", "A = 1\nB = undefined_name + 1\n")
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    assert info.value.problems == [f"{path}:2: NameError: name 'undefined_name' is not defined"]


def test_read_config_file_runtime_error_in_a_function_names_the_innermost_line(
    write: Callable[[str, str], Path],
) -> None:
    path = write("cfg.py", "def port():\n    return int('eighty')\n\nPORT = port()\n")
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}:2: ValueError: invalid literal for int()")


def test_read_config_file_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.py"
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    assert info.value.problems == [f"{path}: no such config file (check the path and the current directory)"]


# -- load: precedence and validation -----------------------------------------------------


def test_load_defaults() -> None:
    settings = load(environ={})
    assert dict(settings.config) == {
        "LOG_LEVEL": "INFO",
        "LOOP_TYPE": "auto",
        "DEBUG": False,
        "STOP_WAIT_TIME": 5.0,
        "BEAN_HISTORY": 1000,
        "WATCHDOG": True,
    }
    assert settings.beans == []
    assert settings.path is None
    assert (settings.log_level, settings.loop_type, settings.debug, settings.stop_wait_time) == (
        "INFO",
        "auto",
        False,
        5.0,
    )


def test_load_precedence_defaults_file_environ_options(write: Callable[[str, str], Path]) -> None:
    path = write(
        "cfg.py",
        """
        LOG_LEVEL = "warning"
        STOP_WAIT_TIME = 3
        DEBUG = True
        GREETING = "from file"
        ONLY_FILE = "file"
        """,
    )
    environ = {
        "AIOPOD_STOP_WAIT_TIME": "7",
        "AIOPOD_GREETING": "from env",
        "AIOPOD_ONLY_ENV": "env",
        "AIOPOD_lower": "ignored",
        "OTHER_GREETING": "ignored",
    }
    settings = load(path, options={"STOP_WAIT_TIME": 9, "LOG_LEVEL": None}, environ=environ)
    assert dict(settings.config) == {
        "LOG_LEVEL": "DEBUG",  # the file's DEBUG = True beats the file's LOG_LEVEL, as in the seed
        "LOOP_TYPE": "auto",  # default
        "DEBUG": True,  # file
        "STOP_WAIT_TIME": 9.0,  # option beats env beats file
        "BEAN_HISTORY": 1000,  # default
        "WATCHDOG": True,  # default
        "GREETING": "from env",
        "ONLY_FILE": "file",
        "ONLY_ENV": "env",
    }
    assert settings.path == path


def test_load_environ_beats_file(write: Callable[[str, str], Path]) -> None:
    path = write("cfg.py", "STOP_WAIT_TIME = 3\nLOOP_TYPE = 'auto'\n")
    settings = load(path, environ={"AIOPOD_STOP_WAIT_TIME": "1.5", "AIOPOD_LOOP_TYPE": "ASYNCIO"})
    assert settings.stop_wait_time == 1.5
    assert settings.loop_type == "asyncio"


def test_load_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOPOD_LOG_LEVEL", "debug")
    monkeypatch.setenv("AIOPOD_GREETING", "hello")
    settings = load()
    assert settings.log_level == "DEBUG"
    assert settings.config.GREETING == "hello"


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "on", "On"])
def test_load_aiopod_debug_true(raw: str) -> None:
    assert load(environ={"AIOPOD_DEBUG": raw}).debug is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "no", "off", ""])
def test_load_aiopod_debug_false(write: Callable[[str, str], Path], raw: str) -> None:
    path = write("cfg.py", "DEBUG = True\n")
    assert load(path, environ={"AIOPOD_DEBUG": raw}).debug is False


def test_load_aiopod_debug_rejects_other_words() -> None:
    with pytest.raises(ConfigError, match=r"AIOPOD_DEBUG='maybe': use 1/0, true/false, yes/no or on/off"):
        load(environ={"AIOPOD_DEBUG": "maybe"})


@pytest.mark.parametrize("raw", ["none", "None", "NONE", ""])
def test_load_aiopod_stop_wait_time_none_waits_for_ever(write: Callable[[str, str], Path], raw: str) -> None:
    path = write("cfg.py", "STOP_WAIT_TIME = 3\n")
    assert load(path, environ={"AIOPOD_STOP_WAIT_TIME": raw}).stop_wait_time is None


def test_load_stop_wait_time_none_in_the_file(write: Callable[[str, str], Path]) -> None:
    path = write("cfg.py", "STOP_WAIT_TIME = None\n")
    assert load(path, environ={}).stop_wait_time is None


@pytest.mark.parametrize("value", ["none", "None"])
def test_load_stop_wait_time_option_none_waits_for_ever(write: Callable[[str, str], Path], value: str) -> None:
    # What `--stop-wait-time none` passes: a None option would mean "not given".
    path = write("cfg.py", "STOP_WAIT_TIME = 3\n")
    assert load(path, options={"STOP_WAIT_TIME": value}, environ={}).stop_wait_time is None


def test_load_aiopod_stop_wait_time_not_a_number() -> None:
    with pytest.raises(ConfigError) as info:
        load(environ={"AIOPOD_STOP_WAIT_TIME": "soon"})
    assert info.value.problems == [
        "AIOPOD_STOP_WAIT_TIME: STOP_WAIT_TIME 'soon' is not a number of seconds >= 0 (or None to wait for ever)"
    ]


def test_load_beans_cannot_come_from_the_environment() -> None:
    with pytest.raises(ConfigError, match="AIOPOD_BEANS: BEANS cannot come from the environment"):
        load(environ={"AIOPOD_BEANS": "[]"})


def test_load_accepts_a_numeric_log_level() -> None:
    assert load(options={"LOG_LEVEL": 10}, environ={}).log_level == 10


def test_load_collects_every_problem_and_names_where_it_came_from(write: Callable[[str, str], Path]) -> None:
    path = write("cfg.py", "LOG_LEVEL = 'LOUD'\nSTOP_WAIT_TIME = -1\nDEBUG = 'yes'\n")
    with pytest.raises(ConfigError) as info:
        load(path, options={"LOOP_TYPE": "tokio"}, environ={})
    assert info.value.problems == [
        f"{path}: LOG_LEVEL 'LOUD' is not a level; use DEBUG, INFO, WARNING, ERROR or CRITICAL",
        "--loop-type: LOOP_TYPE 'tokio' is not one of asyncio, uvloop, auto",
        f"{path}: STOP_WAIT_TIME -1 is not a number of seconds >= 0 (or None to wait for ever)",
        f"{path}: DEBUG 'yes' must be True or False",
    ]


def test_load_beans_from_file_then_quick_start_beans(write: Callable[[str, str], Path], beanmod: str) -> None:
    path = write(
        "cfg.py",
        """
        BEANS = [
            {"core": "beanmod.echo", "label": "one", "answer": 42},
            {"core": "beanmod:greet", "restart": "on-failure"},
        ]
        """,
    )
    settings = load(path, beans=["beanmod.echo:x=1"], environ={})
    assert [(s.core, s.label, s.kind, s.kwargs) for s in settings.beans] == [
        ("beanmod.echo", "one", Kind.FUNCTION, {"answer": 42}),
        ("beanmod:greet", "greeter", Kind.PASS_CONTEXT, {}),
        ("beanmod.echo", None, Kind.FUNCTION, {"x": "1"}),
    ]
    assert settings.beans[0].restart is None
    assert settings.beans[1].restart is not None and settings.beans[1].restart.policy == "on-failure"
    assert settings.config.BEANS[0]["label"] == "one"


def test_load_bean_config_file_merges_its_keys_into_kwargs(write: Callable[[str, str], Path], beanmod: str) -> None:
    write("extra.py", "HOST = 'h'\nPORT = 1\n_HIDDEN = 2\n")
    path = write("cfg.py", "BEANS = [{'core': 'beanmod.echo', 'config_file': 'extra.py', 'PORT': 2}]\n")
    settings = load(path, environ={})
    (spec,) = settings.beans
    assert spec.kwargs == {"HOST": "h", "PORT": 1}  # the file wins, as in the seed, and says so:
    assert settings.notices == [f"{path}: BEANS[0]: 'PORT' = 2 is overridden by extra.py (PORT = 1)"]


def test_load_resolves_each_core_once_and_reports_each_bad_entry(
    write: Callable[[str, str], Path], beanmod: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiopod.pod import spec

    calls: list[str] = []
    resolve = spec.resolve_core

    def counting(core: object) -> Any:
        calls.append(str(core))
        return resolve(core)

    monkeypatch.setattr(spec, "resolve_core", counting)
    beans = "[{'core': 'beanmod.echo', 'n': n} for n in range(3)] + [{'core': 'beanmod:greet'}]"
    path = write("cfg.py", f"BEANS = {beans}\n")
    settings = load(path, environ={})
    assert calls == ["beanmod.echo", "beanmod:greet"]
    assert [dict(s.kwargs) for s in settings.beans] == [{"n": 0}, {"n": 1}, {"n": 2}, {}]
    assert settings.beans[0].kwargs is not settings.beans[1].kwargs

    bad = write("bad.py", "BEANS = [{'core': 'beanmod.nope'}, {'core': 'beanmod.nope'}]\n")
    with pytest.raises(ConfigError) as info:
        load(bad, environ={})
    assert [p.split(":")[1] for p in info.value.problems] == [" BEANS[0].core", " BEANS[1].core"]


# -- Config ------------------------------------------------------------------------------


def test_config_reads_and_writes_names_as_attributes_and_keys() -> None:
    config = Config({"GREETING": "hi"})
    assert config.GREETING == "hi"
    assert config["GREETING"] == "hi"
    config.PORT = 8080
    config["HOST"] = "h"
    assert dict(config) == {"GREETING": "hi", "PORT": 8080, "HOST": "h"}
    assert len(config) == 3
    del config["HOST"]
    assert "HOST" not in config
    assert getattr(config, "HOST", "default") == "default"


def test_config_attribute_error_lists_the_keys_it_has() -> None:
    config = Config({"B": 1, "A": 2})
    with pytest.raises(AttributeError) as info:
        config.MISSING  # noqa: B018
    assert str(info.value) == "config has no 'MISSING' (it has: A, B)"
    assert not hasattr(config, "MISSING")
    with pytest.raises(AttributeError, match=r"\(it has: none\)"):
        Config().ANYTHING  # noqa: B018


def test_config_copies_the_mapping_it_is_given() -> None:
    source = {"A": 1}
    config = Config(source)
    config.A = 2
    assert source == {"A": 1}
    assert repr(config) == "Config({'A': 2})"


def test_a_bean_module_failing_on_import_names_its_own_line(module: Callable[[str, str], Path]) -> None:
    path = module(
        "failing_mod",
        """
        import json

        async def serve():
            pass

        SETTINGS = json.loads("{not json")
        """,
    )
    with pytest.raises(ConfigError) as info:
        parse_bean_arg("failing_mod.serve")
    (problem,) = info.value.problems
    assert problem.startswith(f"bean 'failing_mod.serve': cannot import 'failing_mod.serve': {path}:7: JSONDecodeError")


def test_a_bean_module_raising_attribute_error_on_import_names_its_line(module: Callable[[str, str], Path]) -> None:
    path = module("attr_mod", "import os\n\nasync def serve():\n    pass\n\nHOME = os.no_such_function()\n")
    with pytest.raises(ConfigError) as info:
        parse_bean_arg("attr_mod.serve")
    assert info.value.problems == [
        f"bean 'attr_mod.serve': cannot import 'attr_mod.serve': {path}:6: "
        "AttributeError: module 'os' has no attribute 'no_such_function'"
    ]


def test_config_can_be_copied_and_pickled() -> None:
    config = Config({"A": 1, "NESTED": {"x": [1]}})
    shallow = copy.copy(config)
    deep = copy.deepcopy(config)
    pickled = pickle.loads(pickle.dumps(config))
    for other in (shallow, deep, pickled):
        assert isinstance(other, Config)
        assert dict(other) == {"A": 1, "NESTED": {"x": [1]}}
        assert other.A == 1
    shallow.A = 2
    assert config.A == 1  # a copy has its own keys
    deep.NESTED["x"].append(2)
    assert config.NESTED == {"x": [1]}


def test_a_bean_with_the_checks_kwargs_hook_is_asked_through_every_door() -> None:
    """``ChecksKwargs``: a class's classmethod or a function's attribute; every door asks it."""
    asked: list[dict[str, Any]] = []

    def check(kwargs: Any) -> None:
        asked.append(dict(kwargs))
        if "port" not in kwargs:
            raise ConfigError("port: missing; add 'port': 9000")

    async def serve(**kwargs: Any) -> None:
        pass

    serve.check_kwargs = check  # type: ignore[attr-defined]

    class Served:
        check_kwargs = staticmethod(check)

        def __init__(self, context: Any) -> None:
            pass

        async def __call__(self, **kwargs: Any) -> None:
            pass

    checked: ChecksKwargs = Served  # the class object is the shape the pod calls
    assert checked.check_kwargs is Served.check_kwargs
    for core in (serve, Served):
        with pytest.raises(ConfigError, match=r"BEANS\[0\]: port: missing; add 'port': 9000"):
            load(None, options={"BEANS": [{"core": core}]})
        with pytest.raises(ConfigError, match="port: missing"):
            Pod().add_bean(core)
        assert len(load(None, options={"BEANS": [{"core": core, "port": 1}]}).beans) == 1
    assert asked == [{}, {}, {"port": 1}] * 2


def test_a_check_kwargs_that_is_not_callable_is_not_the_hook() -> None:
    async def serve(**kwargs: Any) -> None:
        pass

    serve.check_kwargs = None  # type: ignore[attr-defined]
    assert Pod().add_bean(serve, port="any").kwargs == {"port": "any"}
    assert len(load(None, options={"BEANS": [{"core": serve}]}).beans) == 1
