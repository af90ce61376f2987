"""Completions for remote sessions, computed in the console thread from the live namespace.

Stdlib only and cheap (names, attributes of dotted names, bean labels): the pod's loop
thread shares the GIL with this code, so nothing here may run long, and nothing here runs
the pod's code: attributes are looked up with ``inspect.getattr_static`` (no property or
``__getattr__`` runs), only along names and dots, never calls or subscripts. The local
console's completer (``completion.py``) needs prompt_toolkit, which ``aiopod run`` never
imports.
"""

from __future__ import annotations

import builtins
import inspect
import keyword
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .namespace import BEAN_ARGUMENT

#: Stop looking after this long; what was found so far is returned.
BUDGET = 0.05
MAX_ITEMS = 500

_DOTTED = re.compile(r"([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)\.([A-Za-z_]\w*)?$")
_NAME = re.compile(r"(?<![\w.])([A-Za-z_]\w*)$")
_BEAN_ARG = re.compile(r"\b(?:%s)\(\s*(['\"])([^'\"]*)$" % "|".join(BEAN_ARGUMENT))  # noqa: UP031
_SIGNAL_LABEL = re.compile(r"\bsignal\(\s*['\"][^'\"]*['\"]\s*,(?:\s*['\"][^'\"]*['\"]\s*,)*\s*(['\"])([^'\"]*)$")

#: One completion: (text to insert, start position relative to the cursor, display, meta).
Item = tuple[str, int, str, str]


def complete(text: str, namespace: Mapping[str, Any], labels: Iterable[str], budget: float = BUDGET) -> list[Item]:
    """What can follow ``text`` (the statement up to the cursor)."""
    deadline = time.monotonic() + budget
    match = _BEAN_ARG.search(text) or _SIGNAL_LABEL.search(text)
    if match is not None:
        quote, prefix = match.group(1), match.group(2)
        return [(label + quote, -len(prefix), label, "bean") for label in sorted(labels) if label.startswith(prefix)]
    match = _DOTTED.search(text)
    if match is not None:
        return _attributes(match.group(1), match.group(2) or "", namespace, deadline)
    match = _NAME.search(text)
    if match is not None:
        return _names(match.group(1), namespace, deadline)
    return []


def _names(prefix: str, namespace: Mapping[str, Any], deadline: float) -> list[Item]:
    found: dict[str, str] = {}
    for source, meta in ((list(namespace), "name"), (dir(builtins), "builtin"), (keyword.kwlist, "keyword")):
        for name in source:
            if name.startswith(prefix) and name not in found and (prefix.startswith("_") or not name.startswith("_")):
                found[name] = meta
        if time.monotonic() > deadline:
            break
    return [(name, -len(prefix), name, meta) for name in sorted(found)[:MAX_ITEMS]]


def _attributes(dotted: str, prefix: str, namespace: Mapping[str, Any], deadline: float) -> list[Item]:
    first, *rest = dotted.split(".")
    if first in namespace:
        obj = namespace[first]
    elif hasattr(builtins, first):
        obj = getattr(builtins, first)
    else:
        return []
    try:
        for part in rest:
            obj = inspect.getattr_static(obj, part)
            if isinstance(obj, property | staticmethod | classmethod):
                return []  # its value is only known by running it
        names = object.__dir__(obj) if not isinstance(obj, type) else dir(obj)
    except Exception:  # no such attribute, an object whose __dir__ fails: nothing to offer
        return []
    items = []
    for name in sorted(set(names)):
        if name.startswith(prefix) and (prefix.startswith("_") or not name.startswith("_")):
            items.append((name, -len(prefix), name, "attribute"))
            if len(items) >= MAX_ITEMS or time.monotonic() > deadline:
                break
    return items
