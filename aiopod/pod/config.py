"""Config files (the seed's format) and the pod's settings: read, merged and checked in one place.

Every door a config comes in by uses the functions here: ``aiopod run -c`` and ``aiopod
shell -c`` (``load``), the console's ``load(path)`` (``Pod.load`` -> ``load_into``) and
``aiopod.testing.start_pod``. ``BEANS`` entries are read by ``aiopod.pod.spec.read_beans``.
"""

from __future__ import annotations

import logging
import math
import os
import stat
import sys
import traceback
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import ConfigError, StartupInterrupted
from .spec import BEAN_KEYS, BeanSpec, check_kwargs, make_spec, parse_bean_arg, parse_kwargs, read_beans, resolve_core

if TYPE_CHECKING:
    from collections.abc import Callable

    from .bean import Bean
    from .pod import Pod

__all__ = [
    "BEAN_KEYS",
    "DEFAULTS",
    "LOOP_TYPES",
    "RESERVED",
    "BeanSpec",
    "Config",
    "PodConfig",
    "check_kwargs",
    "config_on_path",
    "load",
    "load_into",
    "make_spec",
    "parse_bean_arg",
    "parse_kwargs",
    "parse_stop_wait_time",
    "read_beans",
    "read_config_file",
    "resolve_core",
]

logger = logging.getLogger("aiopod")

LoopType = Literal["asyncio", "uvloop", "auto"]
LOOP_TYPES: tuple[LoopType, ...] = ("asyncio", "uvloop", "auto")
RESERVED = ("BEANS", "LOG_LEVEL", "LOOP_TYPE", "DEBUG", "STOP_WAIT_TIME", "BEAN_HISTORY", "WATCHDOG")
DEFAULTS: dict[str, Any] = {
    "LOG_LEVEL": "INFO",
    "LOOP_TYPE": "auto",  # uvloop when installed: what the seed ran by default
    "DEBUG": False,
    "STOP_WAIT_TIME": 5.0,
    "BEAN_HISTORY": 1000,  # ended beans kept for ps() and lookups (aiopod.pod.registry)
    "WATCHDOG": True,  # the loop monitor (aiopod.pod.health)
}
#: The settings ``load()`` can change in a running pod; the others need a new process.
LIVE_SETTINGS = ("STOP_WAIT_TIME", "LOG_LEVEL", "DEBUG")
ENV_PREFIX = "AIOPOD_"
#: The seed's prefix, read where no ``AIOPOD_`` variable sets the same key.
SEED_ENV_PREFIX = "OS_AIO_POD_"
#: The longest STOP_WAIT_TIME (about 31 years): beyond it the clocks overflow, so longer
#: waits must say None (or inf), which mean "for ever".
MAX_STOP_WAIT_TIME = 1e9
#: Where a setting came from, weakest first (the precedence of ``load``).
_DEFAULT, _FILE, _ENV, _OPTION = range(4)


class Config(MutableMapping[str, Any]):
    """The pod's config: every public UPPER_CASE name, readable as ``config.NAME``."""

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_data", dict(data or {}))

    def __getattr__(self, name: str) -> Any:
        # Through __dict__: copy and pickle look attributes up before _data is restored,
        # and self._data would recurse into __getattr__ for ever.
        data = self.__dict__.get("_data", {})
        try:
            return data[name]
        except KeyError:
            known = ", ".join(sorted(data)) or "none"
            raise AttributeError(f"config has no {name!r} (it has: {known})") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._data[name] = value

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __copy__(self) -> Config:
        return type(self)(self._data)  # its own keys, as dict.copy() would give

    def __repr__(self) -> str:
        return f"Config({self._data!r})"


def is_config_name(name: str) -> bool:
    """Public UPPER_CASE names are config; ``_PRIVATE`` and lower-case names are not."""
    return not name.startswith("_") and name.isupper()


def read_config_file(path: str | os.PathLike[str], names: Callable[[str], bool] = is_config_name) -> dict[str, Any]:
    """Run a config file and return its public UPPER_CASE names (or those ``names`` accepts).

    Raises ``ConfigError`` naming the file (and line) for anything wrong with it: missing,
    not a regular file, unreadable, a syntax error, or any exception (``SystemExit`` and
    ``KeyboardInterrupt`` too) while it runs.
    """
    file = Path(path)
    try:
        mode = file.stat().st_mode  # before opening: a FIFO would block open(), /dev/zero never ends
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file (check the path and the current directory)") from None
    except (OSError, ValueError) as exc:  # a symlink loop, a name too long, a NUL in the path
        raise ConfigError(f"{file}: cannot read: {_os_reason(exc)}") from None
    if stat.S_ISDIR(mode):
        raise ConfigError(f"{file}: is a directory; give the Python config file inside it")
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{file}: not a regular file (a FIFO, socket or device); give a Python config file")
    try:
        source = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {_os_reason(exc)}") from None
    try:
        code = compile(source, str(file), "exec")
    except SyntaxError as exc:
        raise ConfigError(f"{file}:{exc.lineno}: syntax error: {exc.msg}") from None
    except ValueError as exc:  # NUL bytes in the source (a SyntaxError from 3.12 on)
        raise ConfigError(f"{file}: not Python source: {exc}") from None
    except (MemoryError, RecursionError):
        raise ConfigError(f"{file}: an expression is nested too deeply to compile; simplify it") from None
    namespace: dict[str, Any] = {"__file__": str(file.resolve()), "__name__": f"aiopod.config:{file.stem}"}
    try:
        exec(code, namespace)
    except StartupInterrupted:
        raise
    except BaseException as exc:  # SystemExit(9) in a config must not end the process with 9
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(file)]
        where = f"{file}:{lines[-1]}" if lines else str(file)
        raise ConfigError(f"{where}: {describe_exception(exc)}") from exc
    return {name: value for name, value in namespace.items() if names(name)}


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` on one line, with a word on what exiting or interrupting means here."""
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:200] + "..."
    what = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if isinstance(exc, SystemExit):
        return f"raised SystemExit({exc.code!r}); a config or bean module must not exit"
    if isinstance(exc, KeyboardInterrupt):
        return "raised KeyboardInterrupt while loading"
    return what


def _os_reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def config_on_path(file: str | os.PathLike[str]) -> None:
    """Make the modules beside a config file importable: its folder goes first on ``sys.path``.

    The same for ``-c``, ``load()`` and ``start_pod``, as ``python script.py`` does for a script.
    """
    folder = str(Path(file).resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_stop_wait_time(value: Any) -> float | None:
    """STOP_WAIT_TIME from a file, the environment or an option: seconds, or None for "for ever".

    Accepts numbers from 0 to ``MAX_STOP_WAIT_TIME``, ``None``/``"none"``, and ``inf`` (for
    ever, as None). Raises ``ConfigError`` (without the source, which the caller adds).
    """
    if value is None:
        return None
    raw = value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in {"none", ""}:
            return None
        try:
            value = float(text)
        except ValueError:
            value = None
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"STOP_WAIT_TIME {_short(raw)} is not a number of seconds >= 0 (or None to wait for ever)")
    try:
        seconds = float(value)
    except OverflowError:  # an int such as 10**400
        seconds = math.inf if value > 0 else -math.inf
        if seconds > 0:
            raise ConfigError(
                f"STOP_WAIT_TIME {_short(raw)} is too large (at most {MAX_STOP_WAIT_TIME:g} s); "
                "use None to wait for ever"
            ) from None
    if math.isnan(seconds) or seconds < 0:
        raise ConfigError(f"STOP_WAIT_TIME {_short(raw)} is not a number of seconds >= 0 (or None to wait for ever)")
    if math.isinf(seconds):
        return None
    if seconds > MAX_STOP_WAIT_TIME:
        raise ConfigError(
            f"STOP_WAIT_TIME {_short(raw)} is too large (at most {MAX_STOP_WAIT_TIME:g} s); use None to wait for ever"
        )
    return seconds


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_env(key: str, raw: str, name: str) -> Any:
    if key in ("DEBUG", "WATCHDOG"):
        if raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise ConfigError(f"{name}={raw!r}: use 1/0, true/false, yes/no or on/off")
    return raw


#: ``AIOPOD_*`` variables that are secrets, read by their one user and never made config keys,
#: which every bean and console session can read (``--telnet`` reads the telnet password).
SECRET_ENV = frozenset({"TELNET_PASSWORD"})


def env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """``AIOPOD_<KEY>`` (else the seed's ``OS_AIO_POD_<KEY>``) variables as config keys.

    Returns ``(values, variable name per key, notices)``; reserved keys are parsed, the
    others kept as strings. Reading a seed variable gives one deprecation notice.
    """
    found: dict[str, Any] = {}
    names: dict[str, str] = {}
    problems: list[str] = []
    seed_used: list[str] = []
    seed_shadowed: list[str] = []
    for prefix in (SEED_ENV_PREFIX, ENV_PREFIX):  # AIOPOD_ comes last: it wins
        for name, raw in environ.items():
            key = name[len(prefix) :]
            if not name.startswith(prefix) or not is_config_name(key) or key in SECRET_ENV:
                continue
            if prefix == SEED_ENV_PREFIX:
                seed_used.append(name)
            elif key in names:
                seed_shadowed.append(f"{names[key]} is ignored: {name} is set")
            if key == "BEANS":
                problems.append(f"{name}: BEANS cannot come from the environment; put it in the config file")
                continue
            try:
                found[key] = _parse_env(key, raw, name)
            except ConfigError as exc:
                problems += exc.problems
                continue
            names[key] = name
    if problems:
        raise ConfigError(problems)
    notices = []
    if seed_used:
        renamed = ", ".join(ENV_PREFIX + n[len(SEED_ENV_PREFIX) :] for n in seed_used)
        line = f"{', '.join(seed_used)}: OS_AIO_POD_* variables are deprecated; rename them {renamed}"
        notices.append(line + "".join(f"; {s}" for s in seed_shadowed))
    return found, names, notices


def check_settings(data: MutableMapping[str, Any], source: Mapping[str, str]) -> list[str]:
    """Validate and normalise the reserved keys in ``data`` in place; return the problems found."""
    problems = []
    if "LOG_LEVEL" in data:
        level = data["LOG_LEVEL"]
        if isinstance(level, str) and level.strip().upper() in logging.getLevelNamesMapping():
            data["LOG_LEVEL"] = level.strip().upper()
        elif not (isinstance(level, int) and not isinstance(level, bool)):
            problems.append(
                f"{source['LOG_LEVEL']}: LOG_LEVEL {_short(level)} is not a level; "
                "use DEBUG, INFO, WARNING, ERROR or CRITICAL"
            )
    if "LOOP_TYPE" in data:
        loop_type = data["LOOP_TYPE"]
        if isinstance(loop_type, str) and loop_type.strip().lower() in LOOP_TYPES:
            data["LOOP_TYPE"] = loop_type.strip().lower()
        else:
            problems.append(f"{source['LOOP_TYPE']}: LOOP_TYPE {_short(loop_type)} is not one of asyncio, uvloop, auto")
    if "STOP_WAIT_TIME" in data:
        try:
            data["STOP_WAIT_TIME"] = parse_stop_wait_time(data["STOP_WAIT_TIME"])
        except ConfigError as exc:
            problems += [f"{source['STOP_WAIT_TIME']}: {p}" for p in exc.problems]
    for key in ("DEBUG", "WATCHDOG"):
        if key in data and not isinstance(data[key], bool):
            problems.append(f"{source[key]}: {key} {_short(data[key])} must be True or False")
    if "BEAN_HISTORY" in data:
        history = data["BEAN_HISTORY"]
        if isinstance(history, str) and history.strip().isdigit():
            history = data["BEAN_HISTORY"] = int(history)
        if isinstance(history, bool) or not isinstance(history, int) or history < 0:
            problems.append(
                f"{source['BEAN_HISTORY']}: BEAN_HISTORY {_short(history)} must be a whole number >= 0 "
                "(how many ended beans to keep)"
            )
    return problems


@dataclass
class PodConfig:
    """Everything ``aiopod run`` needs: the merged config and the beans to start."""

    config: Config
    beans: list[BeanSpec]
    path: Path | None = None
    #: Lines worth a warning that did not stop the pod (shown by the CLI as ``aiopod: warning:``).
    notices: list[str] = field(default_factory=list)

    @property
    def log_level(self) -> str | int:
        return self.config["LOG_LEVEL"]  # type: ignore[no-any-return]

    @property
    def loop_type(self) -> LoopType:
        return self.config["LOOP_TYPE"]  # type: ignore[no-any-return]

    @property
    def debug(self) -> bool:
        return bool(self.config["DEBUG"])

    @property
    def stop_wait_time(self) -> float | None:
        return self.config["STOP_WAIT_TIME"]  # type: ignore[no-any-return]

    @property
    def bean_history(self) -> int:
        return self.config["BEAN_HISTORY"]  # type: ignore[no-any-return]

    @property
    def watchdog(self) -> bool:
        return bool(self.config["WATCHDOG"])


def load(
    path: str | os.PathLike[str] | None = None,
    beans: list[str] | tuple[str, ...] = (),
    options: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> PodConfig:
    """Merge defaults < config file < ``AIOPOD_*`` environment < options, and validate.

    ``beans`` are quick-start strings (``mod.func:k=v``) added after the file's beans.
    Every problem is collected; ``ConfigError.problems`` has one line for each. What is
    worth a warning but does not stop the pod is in ``PodConfig.notices``.
    """
    file = Path(path) if path is not None else None
    data: dict[str, Any] = dict(DEFAULTS)
    source = dict.fromkeys(DEFAULTS, "default")
    rank = dict.fromkeys(DEFAULTS, _DEFAULT)
    problems: list[str] = []
    notices: list[str] = []
    if file is not None:
        from_file = read_config_file(file)
        config_on_path(file)
        data.update(from_file)
        source.update(dict.fromkeys(from_file, str(file)))
        rank.update(dict.fromkeys(from_file, _FILE))
    try:
        from_env, names, env_notices = env_overrides(os.environ if environ is None else environ)
    except ConfigError as exc:
        problems += exc.problems
    else:
        data.update(from_env)
        source.update(names)
        rank.update(dict.fromkeys(from_env, _ENV))
        notices += env_notices
    for key, value in (options or {}).items():
        if value is not None:
            data[key] = value
            source[key] = f"--{key.lower().replace('_', '-')}"
            rank[key] = _OPTION
    problems += check_settings(data, source)
    # DEBUG turns on debug logging, as in the seed, unless LOG_LEVEL was set more strongly
    # than DEBUG was (``--log-level info`` beats ``DEBUG = True`` in the file).
    if data["DEBUG"] is True and rank["LOG_LEVEL"] <= rank["DEBUG"]:
        data["LOG_LEVEL"] = "DEBUG"
    specs: list[BeanSpec] = []
    where = str(file) if file is not None else "config"
    try:
        specs, bean_notices = read_beans(data.get("BEANS", []), where, file.parent if file is not None else None)
    except ConfigError as exc:
        problems += exc.problems
    else:
        notices += bean_notices
    for text in beans:
        try:
            specs.append(parse_bean_arg(text))
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return PodConfig(Config(data), specs, file, notices)


def load_into(pod: Pod, path: str | os.PathLike[str]) -> list[Bean]:
    """``Pod.load``: a config file into a running pod, through the same checks as ``load``.

    The whole file is checked first; a bad file changes nothing and raises ``ConfigError``.
    Its keys merge into ``pod.config``; ``STOP_WAIT_TIME``, ``LOG_LEVEL`` and ``DEBUG`` take
    effect at once (each change logged in one line); ``LOOP_TYPE`` cannot change in a
    running pod, which is logged in one line too. Then its beans start.
    """
    file = Path(path)
    data = read_config_file(file)
    config_on_path(file)  # before its beans are imported, as for -c
    problems = check_settings(data, dict.fromkeys(data, str(file)))
    try:
        specs, notices = read_beans(data.get("BEANS", []), str(file), file.parent)
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise ConfigError(problems)
    if data.get("DEBUG") is True:  # as in load(): the file sets both, and DEBUG wins
        data["LOG_LEVEL"] = "DEBUG"
    for key in RESERVED:
        if key in LIVE_SETTINGS or key == "BEANS" or key not in data:
            continue
        if data[key] != pod.config.get(key):
            notices.append(
                f"{file}: {key} {data[key]!r} cannot change in a running pod (it stays "
                f"{pod.config.get(key)!r}); restart the pod to use it"
            )
    for key in LIVE_SETTINGS:
        now = pod.stop_wait_time if key == "STOP_WAIT_TIME" else pod.config.get(key)
        if key in data and data[key] != now:
            logger.info("%s: %s %r -> %r", file, key, now, data[key])
            _apply_live(pod, key, data[key])
    for line in notices:
        logger.warning("%s", line)
    pod.config.update({k: v for k, v in data.items() if k != "BEANS" and (k not in RESERVED or k in LIVE_SETTINGS)})
    return [pod.add_spec(spec) for spec in specs]


def _apply_live(pod: Pod, key: str, value: Any) -> None:
    if key == "STOP_WAIT_TIME":
        pod.stop_wait_time = value
    elif key == "LOG_LEVEL":
        logging.getLogger().setLevel(value)
        logging.getLogger("aiopod").setLevel(value)
    elif key == "DEBUG" and pod.running:
        pod.loop.set_debug(value)
