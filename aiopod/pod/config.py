"""Config files (the seed's format), settings, and bean specs."""

from __future__ import annotations

import logging
import os
import re
import traceback
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._collector import collector_paused
from ._importer import ImportStringError, import_from_string, qualified_name
from .bean import NO_KWARGS, Kind, classify
from .context import default_label
from .errors import ConfigError

LoopType = Literal["asyncio", "uvloop", "auto"]
LOOP_TYPES: tuple[LoopType, ...] = ("asyncio", "uvloop", "auto")
RESERVED = ("BEANS", "LOG_LEVEL", "LOOP_TYPE", "DEBUG", "STOP_WAIT_TIME", "BEAN_HISTORY", "WATCHDOG")
DEFAULTS: dict[str, Any] = {
    "LOG_LEVEL": "INFO",
    "LOOP_TYPE": "asyncio",
    "DEBUG": False,
    "STOP_WAIT_TIME": 5.0,
    "BEAN_HISTORY": 1000,  # ended beans kept for ps() and lookups (aiopod.pod.registry)
    "WATCHDOG": True,  # the loop monitor (aiopod.pod.health)
}
BEAN_KEYS = ("core", "label", "config_file", "restart")
_BEAN_KEY_SET = frozenset(BEAN_KEYS)
ENV_PREFIX = "AIOPOD_"


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


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Run a config file and return its public UPPER_CASE names.

    Raises ``ConfigError`` naming the file (and line) when it is missing or broken.
    """
    file = Path(path)
    try:
        source = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file (check the path given to -c/--config)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from None
    try:
        code = compile(source, str(file), "exec")
    except SyntaxError as exc:
        raise ConfigError(f"{file}:{exc.lineno}: syntax error: {exc.msg}") from None
    namespace: dict[str, Any] = {"__file__": str(file.resolve()), "__name__": f"aiopod.config:{file.stem}"}
    try:
        exec(code, namespace)
    except Exception as exc:
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(file)]
        where = f"{file}:{lines[-1]}" if lines else str(file)
        raise ConfigError(f"{where}: {type(exc).__name__}: {exc}") from exc
    return {name: value for name, value in namespace.items() if is_config_name(name)}


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_env(key: str, raw: str) -> Any:
    if key in ("DEBUG", "WATCHDOG"):
        if raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise ConfigError(f"{ENV_PREFIX}{key}={raw!r}: use 1/0, true/false, yes/no or on/off")
    if key == "STOP_WAIT_TIME" and raw.lower() in {"none", ""}:
        return None
    return raw


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``AIOPOD_<KEY>`` variables as config keys (reserved keys parsed, others kept as strings)."""
    found: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :]
        if key == "BEANS":
            raise ConfigError(f"{name}: BEANS cannot come from the environment; put it in the config file")
        if is_config_name(key):
            found[key] = _parse_env(key, raw)
    return found


def _check_settings(data: MutableMapping[str, Any], source: Mapping[str, str]) -> list[str]:
    """Validate and normalise the reserved keys in place; return the problems found."""
    problems = []
    level = data["LOG_LEVEL"]
    if isinstance(level, str) and level.upper() in logging.getLevelNamesMapping():
        data["LOG_LEVEL"] = level.upper()
    elif not (isinstance(level, int) and not isinstance(level, bool)):
        problems.append(
            f"{source['LOG_LEVEL']}: LOG_LEVEL {level!r} is not a level; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    loop_type = data["LOOP_TYPE"]
    if isinstance(loop_type, str) and loop_type.lower() in LOOP_TYPES:
        data["LOOP_TYPE"] = loop_type.lower()
    else:
        problems.append(f"{source['LOOP_TYPE']}: LOOP_TYPE {loop_type!r} is not one of asyncio, uvloop, auto")
    wait = data["STOP_WAIT_TIME"]
    if isinstance(wait, str):
        try:
            wait = None if wait.strip().lower() == "none" else float(wait)
        except ValueError:
            pass
    if wait is not None and (isinstance(wait, bool) or not isinstance(wait, int | float) or wait < 0):
        problems.append(
            f"{source['STOP_WAIT_TIME']}: STOP_WAIT_TIME {data['STOP_WAIT_TIME']!r} is not a number of "
            "seconds >= 0 (or None to wait for ever)"
        )
    else:
        data["STOP_WAIT_TIME"] = None if wait is None else float(wait)
    for key in ("DEBUG", "WATCHDOG"):
        if not isinstance(data[key], bool):
            problems.append(f"{source[key]}: {key} {data[key]!r} must be True or False")
    history = data["BEAN_HISTORY"]
    if isinstance(history, str) and history.strip().isdigit():
        history = data["BEAN_HISTORY"] = int(history)
    if isinstance(history, bool) or not isinstance(history, int) or history < 0:
        problems.append(
            f"{source['BEAN_HISTORY']}: BEAN_HISTORY {history!r} must be a whole number >= 0 "
            "(how many ended beans to keep)"
        )
    return problems


@dataclass(slots=True)
class BeanSpec:
    """A bean as configured, before it is added to a pod."""

    obj: Any
    core: str
    kind: Kind
    label: str | None = None
    kwargs: Mapping[str, Any] = field(default_factory=lambda: NO_KWARGS)
    restart: Any = None
    origin: str = ""


def resolve_core(core: Any) -> tuple[Any, str, Kind]:
    """Import ``core`` if it is a string and classify it: ``(object, name, kind)``.

    Raises ``ConfigError`` with a message that does not yet say where ``core`` came from.
    """
    if isinstance(core, str):
        try:
            obj = import_from_string(core)
        except ImportStringError as exc:
            raise ConfigError(str(exc)) from exc
        name = core
    else:
        obj, name = core, qualified_name(core)
    try:
        kind = classify(obj)
    except TypeError as exc:
        raise ConfigError(f"{name!r}: {exc}") from None
    return obj, name, kind


def check_kwargs(obj: Any, kwargs: Mapping[str, Any], origin: str) -> list[str]:
    """Let a bean check its keyword arguments before anything starts.

    A bean class (or function) may define ``check_kwargs(kwargs)`` raising ``ConfigError``;
    adapters use it to refuse a bad port, app or host with exit status 2.
    """
    check = getattr(obj, "check_kwargs", None)
    if not callable(check):
        return []
    try:
        check(kwargs)
    except ConfigError as exc:
        return [f"{origin}: {p}" for p in exc.problems]
    return []


def make_spec(
    entry: Mapping[str, Any],
    origin: str,
    base_dir: Path | None = None,
    resolved: dict[str, tuple[Any, str, Kind]] | None = None,
) -> BeanSpec:
    """Validate one ``BEANS`` entry; raises ``ConfigError`` listing all its problems.

    ``resolved`` remembers the import strings already resolved (a config naming the same
    core 100k times imports and classifies it once).
    """
    problems = []
    if "core" not in entry:
        problems.append(f'{origin}: missing \'core\'; add "core": "package.module:function"')
    label = entry.get("label")
    if label is not None and not isinstance(label, str):
        problems.append(f"{origin}.label: {label!r} must be a string")
    kwargs: Mapping[str, Any] = NO_KWARGS  # shared by the entries that have none
    if not entry.keys() <= _BEAN_KEY_SET:
        kwargs = {k: v for k, v in entry.items() if k not in BEAN_KEYS}
        bad_keys = [k for k in kwargs if not isinstance(k, str) or not k.isidentifier()]
        if bad_keys:
            problems.append(f"{origin}: keys {bad_keys!r} are not valid keyword argument names")
    if entry.get("config_file") is not None:
        try:
            extra = read_config_file(_find(entry["config_file"], base_dir))
        except ConfigError as exc:
            problems.extend(f"{origin}.config_file: {p}" for p in exc.problems)
        else:
            kwargs = {**extra, **kwargs}
    restart = entry.get("restart")
    if restart is not None:
        from .supervision import parse_restart  # late: supervision needs BeanSpec's module loaded

        try:
            restart = parse_restart(restart)
        except ConfigError as exc:
            problems.extend(f"{origin}.restart: {p}" for p in exc.problems)
            restart = None
    obj = name = kind = None
    if "core" in entry:
        core = entry["core"]
        try:
            if resolved is not None and isinstance(core, str):
                if core not in resolved:
                    resolved[core] = resolve_core(core)
                obj, name, kind = resolved[core]
            else:
                obj, name, kind = resolve_core(core)
        except ConfigError as exc:
            problems.extend(f"{origin}.core: {p}" for p in exc.problems)
        else:
            problems += check_kwargs(obj, kwargs, origin)
    if problems or kind is None or name is None:
        raise ConfigError(problems)
    label = label if label is not None else default_label(obj)
    return BeanSpec(obj, name, kind, label, kwargs, restart, origin)


def _find(path: str, base_dir: Path | None) -> Path:
    """A relative ``config_file`` is looked up beside the config first, then from the cwd."""
    candidate = Path(path)
    if not candidate.is_absolute() and base_dir is not None and (base_dir / candidate).exists():
        return base_dir / candidate
    return candidate


@dataclass
class PodConfig:
    """Everything ``aiopod run`` needs: the merged config and the beans to start."""

    config: Config
    beans: list[BeanSpec]
    path: Path | None = None

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
    Every problem is collected; ``ConfigError.problems`` has one line for each.
    """
    file = Path(path) if path is not None else None
    data: dict[str, Any] = dict(DEFAULTS)
    source = dict.fromkeys(DEFAULTS, "default")
    problems: list[str] = []
    if file is not None:
        from_file = read_config_file(file)
        data.update(from_file)
        source.update(dict.fromkeys(from_file, str(file)))
    from_env = env_overrides(os.environ if environ is None else environ)
    data.update(from_env)
    source.update({k: f"{ENV_PREFIX}{k}" for k in from_env})
    for key, value in (options or {}).items():
        if value is not None:
            data[key] = value
            source[key] = f"--{key.lower().replace('_', '-')}"
    problems += _check_settings(data, source)
    specs: list[BeanSpec] = []
    entries = data.get("BEANS", [])
    where = str(file) if file is not None else "config"
    if not isinstance(entries, list | tuple):
        problems.append(f"{where}: BEANS must be a list of dicts, got {type(entries).__name__}")
        entries = []
    base_dir = file.parent if file is not None else None
    resolved: dict[str, tuple[Any, str, Kind]] = {}
    with collector_paused(len(entries)):  # the specs all live on: tracing them is wasted
        for index, entry in enumerate(entries):
            origin = f"{where}: BEANS[{index}]"
            if not isinstance(entry, Mapping):
                problems.append(f"{origin}: must be a dict with a 'core' key, got {type(entry).__name__}")
                continue
            try:
                specs.append(make_spec(entry, origin, base_dir, resolved))
            except ConfigError as exc:
                problems += exc.problems
    for text in beans:
        try:
            specs.append(parse_bean_arg(text))
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return PodConfig(Config(data), specs, file)


_BEAN_ARG = re.compile(r"(?P<core>[\w.]+(?::[\w.]+)?)(?::(?P<kwargs>.*))?", re.DOTALL)


def parse_kwargs(raw: str) -> list[tuple[str | None, str]]:
    """Split ``k=v,k2=v2`` into pairs; ``\\,`` and ``\\=`` are a literal comma and equals sign.

    A pair without ``=`` comes back with key None.
    """
    pairs: list[tuple[str | None, str]] = []
    key: str | None = None
    buf: list[str] = []
    escaped = False
    for ch in raw:
        if escaped:
            buf.append(ch if ch in ",=\\" else "\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "=" and key is None:
            key, buf = "".join(buf), []
        elif ch == ",":
            if key is not None or buf:
                pairs.append((key, "".join(buf)))
            key, buf = None, []
        else:
            buf.append(ch)
    if escaped:
        buf.append("\\")
    if key is not None or buf:
        pairs.append((key, "".join(buf)))
    return pairs


def parse_bean_arg(text: str) -> BeanSpec:
    """Parse the seed's quick-start syntax: ``pkg.mod.func:k=v,k2=v2`` (also ``pkg.mod:func:k=v``).

    ``\\,`` and ``\\=`` put a literal comma or equals sign in a value; values are strings.
    """
    match = _BEAN_ARG.fullmatch(text)
    if match is None:
        raise ConfigError(f"bean {text!r}: expected 'package.module.function[:key=value,...]'")
    kwargs: dict[str, Any] = {}
    for key, value in parse_kwargs(match["kwargs"] or ""):
        if key is None or not key.isidentifier():
            raise ConfigError(
                f"bean {text!r}: {value if key is None else key!r} is not key=value "
                "(escape a literal ',' or '=' in a value as \\, or \\=)"
            )
        kwargs[key] = value
    try:
        obj, name, kind = resolve_core(match["core"])
    except ConfigError as exc:
        raise ConfigError(f"bean {text!r}: {p}" for p in exc.problems) from None
    problems = check_kwargs(obj, kwargs, f"bean {text!r}")
    if problems:
        raise ConfigError(problems)
    return BeanSpec(obj, name, kind, default_label(obj), kwargs, None, f"bean {text!r}")
