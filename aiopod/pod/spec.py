"""``BEANS`` entries and quick-start strings, read into ``BeanSpec``: one path for every door.

``aiopod run -c``, ``Pod.load`` (the console's ``load()``) and ``aiopod.testing.start_pod``
all read their entries with ``read_beans``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, TypeGuard

from ._importer import ImportStringError, import_from_string, qualified_name
from .bean import NO_KWARGS, Kind, classify
from .context import default_label
from .errors import ConfigError

BEAN_KEYS = ("core", "label", "config_file", "restart")
_BEAN_KEY_SET = frozenset(BEAN_KEYS)
#: Keys a bean's ``config_file`` cannot set: they say where the bean and its file are.
_NOT_FROM_FILE = ("core", "config_file")


class BeanSpec:  # not a dataclass: building one costs ~1 ms at every start (README row 3)
    """A bean as configured, before it is added to a pod."""

    __slots__ = ("core", "kind", "kwargs", "label", "obj", "origin", "restart")

    def __init__(
        self,
        obj: Any,
        core: str,
        kind: Kind,
        label: str | None = None,
        kwargs: Mapping[str, Any] = NO_KWARGS,
        restart: Any = None,
        origin: str = "",
    ) -> None:
        self.obj = obj
        self.core = core
        self.kind = kind
        self.label = label
        self.kwargs = kwargs
        self.restart = restart
        self.origin = origin

    def __repr__(self) -> str:
        return f"<BeanSpec {self.core!r} label={self.label!r} from {self.origin or 'code'}>"


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


class ChecksKwargs(Protocol):
    """A bean that checks its keyword arguments before it starts: the one hook the pod calls on a bean.

    ``check_kwargs(kwargs)`` raises ``ConfigError`` with one line per problem, each naming
    the key and the fix (exit status 2 from ``aiopod run``). A bean class has it as a
    classmethod (every ``aiopod.contrib`` adapter does, from ``Adapter``); a bean function
    may carry it as an attribute.
    """

    def check_kwargs(self, kwargs: Mapping[str, Any], /) -> None: ...


def checks_kwargs(obj: object) -> TypeGuard[ChecksKwargs]:
    """Whether the bean ``obj`` has the ``ChecksKwargs`` hook.

    An explicit attribute check: ``isinstance`` against a runtime-checkable protocol costs
    about 15 µs a bean on Python 3.11, a second and a half for a config of 100k beans.
    """
    return callable(getattr(obj, "check_kwargs", None))


def check_kwargs(obj: Any, kwargs: Mapping[str, Any], origin: str) -> list[str]:
    """Let a bean check its keyword arguments before anything starts (``ChecksKwargs``).

    Adapters use it to refuse a bad port, app or host with exit status 2.
    """
    if not checks_kwargs(obj):
        return []
    try:
        obj.check_kwargs(kwargs)
    except ConfigError as exc:
        return [f"{origin}: {p}" for p in exc.problems]
    return []


def read_bean_file(path: Any, base_dir: Path | None, origin: str) -> tuple[dict[str, Any], list[str]]:
    """A bean's ``config_file``: every public name (lower-case too, as in the seed), and notices.

    Modules the file imports are not settings and are left out; ``core`` and
    ``config_file`` in the file are ignored with a notice.
    """
    from .config import read_config_file  # config imports this module

    if not isinstance(path, str | os.PathLike):
        raise ConfigError(f"{origin}.config_file: {path!r} must be a path to a Python file (a string)")
    names = read_config_file(_find(path, base_dir), names=_is_public)
    notices = [
        f"{origin}.config_file: {key!r} in {path} is ignored (a bean's file cannot change its {key})"
        for key in _NOT_FROM_FILE
        if key in names
    ]
    settings = {k: v for k, v in names.items() if k not in _NOT_FROM_FILE and not isinstance(v, ModuleType)}
    return settings, notices


def _is_public(name: str) -> bool:
    return not name.startswith("_")


def _differs(a: Any, b: Any) -> bool:
    try:
        return bool(a != b)
    except Exception:  # a value whose comparison raises (an array, say) counts as different
        return True


def make_spec(
    entry: Mapping[str, Any],
    origin: str,
    base_dir: Path | None = None,
    resolved: dict[str, tuple[Any, str, Kind]] | None = None,
    notices: list[str] | None = None,
) -> BeanSpec:
    """Validate one ``BEANS`` entry; raises ``ConfigError`` listing all its problems.

    A ``config_file``'s names win over the entry's own keys (as in the seed); each key the
    file overrides is added to ``notices``. ``resolved`` remembers the import strings
    already resolved (a config naming the same core 100k times imports it once).
    """
    problems: list[str] = []
    if "config_file" in entry and entry["config_file"] is not None:
        try:
            settings, found = read_bean_file(entry["config_file"], base_dir, origin)
        except ConfigError as exc:
            problems.extend(p if p.startswith(origin) else f"{origin}.config_file: {p}" for p in exc.problems)
        else:
            if notices is not None:
                notices += found
                notices += [
                    f"{origin}: {key!r} = {entry[key]!r} is overridden by {entry['config_file']} ({key} = {value!r})"
                    for key, value in settings.items()
                    if key in entry and _differs(entry[key], value)
                ]
            entry = {**entry, **settings}
    if "core" not in entry:
        problems.append(f'{origin}: missing \'core\'; add "core": "package.module:function"')
    label = entry.get("label")
    if label is not None and not isinstance(label, str):
        problems.append(f"{origin}.label: {label!r} must be a string")
    kwargs: Mapping[str, Any] = NO_KWARGS  # shared by the entries that have none
    if not entry.keys() <= _BEAN_KEY_SET:
        kwargs = {k: v for k, v in entry.items() if k not in _BEAN_KEY_SET}
        bad_keys = [k for k in kwargs if not isinstance(k, str) or not k.isidentifier()]
        if bad_keys:
            problems.append(f"{origin}: keys {bad_keys!r} are not valid keyword argument names")
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


def read_beans(entries: Any, where: str, base_dir: Path | None = None) -> tuple[list[BeanSpec], list[str]]:
    """Read a ``BEANS`` list: ``(specs, notices)``; raises ``ConfigError`` with every problem.

    ``notices`` are lines worth a warning that do not stop the pod (a key a bean's
    ``config_file`` overrides, a key it ignores).
    """
    from ._collector import frozen

    if not isinstance(entries, list | tuple):
        raise ConfigError(f"{where}: BEANS must be a list of dicts, got {type(entries).__name__}")
    specs: list[BeanSpec] = []
    problems: list[str] = []
    notices: list[str] = []
    resolved: dict[str, tuple[Any, str, Kind]] = {}
    with frozen():  # a burst of specs (aiopod.pod._collector)
        for index, entry in enumerate(entries):
            origin = f"{where}: BEANS[{index}]"
            if not isinstance(entry, Mapping):
                problems.append(f"{origin}: must be a dict with a 'core' key, got {type(entry).__name__}")
                continue
            try:
                specs.append(make_spec(entry, origin, base_dir, resolved, notices))
            except ConfigError as exc:
                problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return specs, notices


def _find(path: str | os.PathLike[str], base_dir: Path | None) -> Path:
    """A relative ``config_file`` is looked up beside the config first, then from the cwd."""
    candidate = Path(path)
    if not candidate.is_absolute() and base_dir is not None and (base_dir / candidate).exists():
        return base_dir / candidate
    return candidate


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
    ``label=`` is the bean's label, as in the seed, not a keyword argument.
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
    label = kwargs.pop("label", None)
    try:
        obj, name, kind = resolve_core(match["core"])
    except ConfigError as exc:
        raise ConfigError(f"bean {text!r}: {p}" for p in exc.problems) from None
    problems = check_kwargs(obj, kwargs, f"bean {text!r}")
    if problems:
        raise ConfigError(problems)
    return BeanSpec(obj, name, kind, label or default_label(obj), kwargs, None, f"bean {text!r}")
