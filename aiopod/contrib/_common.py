"""What the adapters share besides networking: import strings, the ``app`` check, sync-or-async hooks."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
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


def whole(value: Any) -> int | None:
    """``value`` as a whole number (an int, or a string of digits), else None."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def whole_problems(kwargs: Mapping[str, Any], least: Mapping[str, int]) -> list[str]:
    """One line for each keyword argument given that is not a whole number >= its ``least``."""
    problems = []
    for name, smallest in least.items():
        if name in kwargs:
            number = whole(kwargs[name])
            if number is None or number < smallest:
                problems.append(f"{name}: {kwargs[name]!r} must be a whole number >= {smallest}")
    return problems


def seconds_problems(kwargs: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """One line for each keyword argument given that is not a (finite) number of seconds >= 0."""
    problems = []
    for name in names:
        value = kwargs.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
            problems.append(f"{name}: {value!r} must be a number of seconds >= 0")
    return problems
