"""Resolve ``pkg.mod.attr`` and ``pkg.mod:attr`` import strings."""

from __future__ import annotations

import importlib
import inspect
import traceback
from types import CodeType, ModuleType
from typing import Any

from .errors import StartupInterrupted


class ImportStringError(ImportError):
    """An import string could not be resolved; the message says why and where."""


#: The optional dependency behind each of aiopod's adapters, and the extra that installs it.
EXTRAS = {"uvicorn": "uvicorn", "aiohttp": "aiohttp", "aiomonitor": "aiomonitor", "uvloop": "uvloop"}
_OWN = ("aiopod.", "os_aio_pod.")


def import_from_string(path: str) -> Any:
    """Return the object that ``path`` names, importing its module on the way.

    ``pkg.mod:attr`` imports ``pkg.mod``; ``pkg.mod.attr`` imports the longest prefix that
    is a module. Whatever fails inside a module that exists (a missing dependency, a
    syntax error, any exception) is reported as itself, never as a missing attribute.
    """
    if not path or any(ch.isspace() for ch in path):
        raise ImportStringError(f"{path!r} is not an import string; write 'pkg.module:attribute'")
    try:
        return _resolve(path)
    except StartupInterrupted:
        raise
    except SyntaxError as exc:
        where = f"{exc.filename}:{exc.lineno}" if exc.filename else "?"
        raise ImportStringError(f"cannot import {path!r}: {where}: syntax error: {exc.msg}") from exc
    except ModuleNotFoundError as exc:
        raise ImportStringError(f"cannot import {path!r}: {_where(exc)}{_missing(path, exc.name)}") from exc
    except _NotFound as exc:
        raise ImportStringError(f"cannot import {path!r}: {exc}") from None
    except BaseException as exc:  # SystemExit or KeyboardInterrupt in a bean's module too: one line, not an exit
        raise ImportStringError(f"cannot import {path!r}: {_where(exc)}{_describe(exc)}") from exc


class _NotFound(Exception):
    """The modules imported, and the attribute is not there (or the string is malformed)."""


def _resolve(path: str) -> Any:
    if ":" in path:
        modname, _, attrs = path.partition(":")
        if not modname or not attrs or ":" in attrs:
            raise _NotFound("write 'pkg.module:attribute' (one colon, a name on each side)")
        obj = importlib.import_module(modname)
        parts = attrs.split(".")
    else:
        parts = path.split(".")
        modname = parts.pop(0)
        obj = importlib.import_module(modname)
        while parts:
            name = f"{modname}.{parts[0]}"
            try:
                obj = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name != name:
                    raise  # the module exists and something it imports is missing
                break  # no such module: the rest are attributes
            modname = name
            parts.pop(0)
    for part in parts:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            owner = f"module {obj.__name__!r}" if isinstance(obj, ModuleType) else repr(obj)
            raise _NotFound(f"{owner} has no attribute {part!r}") from None
    return obj


def _missing(path: str, name: str | None) -> str:
    top = (name or "").partition(".")[0]
    if path.startswith(_OWN) and top in EXTRAS:
        return f"no module named {name!r}: install it with pip install 'aiopod[{EXTRAS[top]}]'"
    return f"no module named {name!r} (is it installed, or is the current directory the one holding it?)"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}) while importing; a bean module must not exit"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _where(exc: BaseException) -> str:
    """``file:line: `` of the innermost module-level line that raised ``exc`` ("" if none did).

    Module code, not the innermost frame: that one is often in the stdlib (``<frozen os>``
    for a missing environment variable), which does not say which line of the bean's
    module to fix.
    """
    modules = [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.name == "<module>"]
    return f"{modules[-1].filename}:{modules[-1].lineno}: " if modules else ""


def qualified_name(obj: Any) -> str:
    """A readable ``module:qualname`` for an object given directly instead of by string."""
    if inspect.iscoroutine(obj):  # coroutine objects have no __module__
        return coroutine_name(obj)
    if not isinstance(getattr(obj, "__qualname__", None), str):  # a value (5, "x"), not a function or class
        text = repr(obj)
        return text if len(text) <= 60 else text[:57] + "..."
    module = getattr(obj, "__module__", None) or "?"
    return f"{module}:{obj.__qualname__}"


#: ``module:qualname`` of the coroutines seen so far, by qualname, with the code they ran:
#: a pod starting a bean per job names each one, and building the name cost more than the
#: rest of adding the bean (issue 14). The module is that of the globals the code runs in
#: (only ``types.FunctionType(code, other_globals)`` would differ), read once per code from
#: the coroutine's frame: reading ``cr_frame`` makes a frame object, and one collected
#: object more per bean made a pod starting a bean per job run a collection every 100
#: beans. The code is checked because functions in two modules may share a qualname (a
#: qualname string's hash is cached, a code object's is not). Emptied past ``_NAMES_KEPT``
#: so that code compiled at run time (the console) is not kept for ever.
_NAMES: dict[str, tuple[CodeType, str]] = {}
_NAMES_KEPT = 256


def coroutine_name(coro: Any) -> str:
    """``module:qualname`` of a coroutine object (module ``?`` if it has ended unseen)."""
    qualname = coro.__qualname__
    known = _NAMES.get(qualname)
    code = coro.cr_code
    if known is not None and known[0] is code:
        return known[1]
    frame = coro.cr_frame
    if frame is None:
        return f"?:{qualname}"
    name = f"{frame.f_globals.get('__name__', '?')}:{qualname}"
    if len(_NAMES) >= _NAMES_KEPT:
        _NAMES.clear()
    _NAMES[qualname] = (code, name)
    return name
