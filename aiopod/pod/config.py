"""Config files (the seed's format): read, merged with the environment and options, and checked.

Every door a config comes in by uses the functions here: ``aiopod run -c`` and ``aiopod
shell -c`` (``load``), the console's ``load(path)`` (``Pod.load`` -> ``load_into``) and
``aiopod.testing.start_pod``. ``BEANS`` entries are read by ``aiopod.pod.spec.read_beans``,
the reserved settings by ``aiopod.pod.settings``.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import traceback
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, StartupInterrupted
from .settings import (
    DEFAULTS,
    FROM_DEFAULT,
    FROM_ENV,
    FROM_FILE,
    FROM_OPTION,
    LIVE_SETTINGS,
    LOOP_TYPES,
    RESERVED,
    LoopType,
    check_settings,
    env_overrides,
    is_config_name,
    parse_stop_wait_time,
)
from .spec import (
    BEAN_KEYS,
    BeanSpec,
    ChecksKwargs,
    check_kwargs,
    checks_kwargs,
    make_spec,
    parse_bean_arg,
    parse_kwargs,
    read_beans,
    resolve_core,
)

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
    "ChecksKwargs",
    "Config",
    "LoopType",
    "PodConfig",
    "check_kwargs",
    "checks_kwargs",
    "config_on_path",
    "entry_spec",
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


class PodConfig:  # not a dataclass: building one costs ~1 ms at every start (README row 3)
    """Everything ``aiopod run`` needs: the merged config and the beans to start."""

    def __init__(
        self, config: Config, beans: list[BeanSpec], path: Path | None = None, notices: list[str] | None = None
    ) -> None:
        self.config = config
        self.beans = beans
        self.path = path
        #: Lines worth a warning that did not stop the pod (shown by the CLI as ``aiopod: warning:``).
        self.notices = [] if notices is None else notices

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
    rank = dict.fromkeys(DEFAULTS, FROM_DEFAULT)
    problems: list[str] = []
    notices: list[str] = []
    if file is not None:
        from_file = read_config_file(file)
        config_on_path(file)
        data.update(from_file)
        source.update(dict.fromkeys(from_file, str(file)))
        rank.update(dict.fromkeys(from_file, FROM_FILE))
    try:
        from_env, names, env_notices = env_overrides(os.environ if environ is None else environ)
    except ConfigError as exc:
        problems += exc.problems
    else:
        data.update(from_env)
        source.update(names)
        rank.update(dict.fromkeys(from_env, FROM_ENV))
        notices += env_notices
    for key, value in (options or {}).items():
        if value is not None:
            data[key] = value
            source[key] = f"--{key.lower().replace('_', '-')}"
            rank[key] = FROM_OPTION
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
    effect at once (each change logged in one line); the other reserved keys (``LOOP_TYPE``)
    cannot change in a running pod: a different value is logged in one line and not merged.
    Then its beans start.
    """
    file = Path(path)
    data = read_config_file(file)
    config_on_path(file)  # before its beans are imported, as for -c
    problems = check_settings(data, dict.fromkeys(data, str(file)))
    specs: list[BeanSpec] = []
    notices: list[str] = []
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


def entry_spec(entry: Mapping[str, Any]) -> BeanSpec:
    """One ``BEANS``-style entry added from code (``pod.add_bean(..., config_file=...)``), its notices logged."""
    notices: list[str] = []
    spec = make_spec(entry, f"bean {entry.get('core')!r}", None, None, notices)
    for line in notices:
        logger.warning("%s", line)
    return spec


def _apply_live(pod: Pod, key: str, value: Any) -> None:
    if key == "STOP_WAIT_TIME":
        pod.stop_wait_time = value
    elif key == "LOG_LEVEL":
        logging.getLogger().setLevel(value)
        logging.getLogger("aiopod").setLevel(value)
    elif key == "DEBUG" and pod.running:
        pod.loop.set_debug(value)
