"""What the adapters share besides networking: import strings, the ``app`` check, sync-or-async hooks."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from ..pod import ConfigError
from ..pod._importer import ImportStringError, import_from_string


async def maybe_await(value: Any) -> Any:
    """``await value`` when a hook was ``async def``; a plain value is returned as it is."""
    if inspect.isawaitable(value):
        return await value
    return value


def load(value: Any, what: str) -> Any:
    """``value`` itself, or the object that an import string names.

    Raises ``ConfigError`` that names the keyword argument (``what``) to fix.
    """
    if not isinstance(value, str):
        return value
    try:
        return import_from_string(value)
    except ImportStringError as exc:
        raise ConfigError(f"{what}: {exc}") from None


def app_problems(kwargs: Mapping[str, Any], hint: str, accepts: Callable[[Any], bool], expected: str) -> list[str]:
    """Check the ``app`` kwarg of a web adapter: present, importable, of a type ``accepts``."""
    if "app" not in kwargs:
        return [f'app: missing; add "app": "package.module:app" ({hint})']
    try:
        app = load(kwargs["app"], "app")
    except ConfigError as exc:
        return list(exc.problems)
    if accepts(app):
        return []
    return [f"app: {kwargs['app']!r} is a {type(app).__name__}, not {expected}"]
