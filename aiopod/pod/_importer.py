"""Resolve ``pkg.mod.attr`` and ``pkg.mod:attr`` import strings."""

from __future__ import annotations

import inspect
import pkgutil
import traceback
from typing import Any


class ImportStringError(ImportError):
    """An import string could not be resolved; the message says why and where."""


def import_from_string(path: str) -> Any:
    """Return the object that ``path`` names, importing its module on the way."""
    if not path or any(ch.isspace() for ch in path):
        raise ImportStringError(f"{path!r} is not an import string; write 'pkg.module:attribute'")
    try:
        return pkgutil.resolve_name(path)
    except SyntaxError as exc:
        where = f"{exc.filename}:{exc.lineno}" if exc.filename else "?"
        raise ImportStringError(f"cannot import {path!r}: {where}: {exc.msg}") from exc
    except ModuleNotFoundError as exc:
        raise ImportStringError(
            f"cannot import {path!r}: no module named {exc.name!r} "
            "(is it installed, or is the current directory the one holding it?)"
        ) from exc
    except Exception as exc:
        where = _where(exc)
        if isinstance(exc, AttributeError | ValueError) and not where:
            # resolve_name's own errors (no such attribute, a malformed name) say it all
            raise ImportStringError(f"cannot import {path!r}: {exc}") from exc
        raise ImportStringError(f"cannot import {path!r}: {where}{type(exc).__name__}: {exc}") from exc


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
        module = obj.cr_frame.f_globals.get("__name__", "?") if obj.cr_frame else "?"
    else:
        module = getattr(obj, "__module__", None) or "?"
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}:{name}"
