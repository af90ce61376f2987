from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def module(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """Write an importable module under tmp_path: ``module("name", source)``.

    tmp_path goes on sys.path for the test; the path and every module imported from
    it are removed afterwards, so tests do not see each other's modules.
    """
    root = str(tmp_path)
    sys.path.insert(0, root)

    def _module(name: str, source: str) -> Path:
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        importlib.invalidate_caches()  # the finder caches directory listings by mtime
        return path

    try:
        yield _module
    finally:
        sys.path.remove(root)
        for name, mod in list(sys.modules.items()):
            if (getattr(mod, "__file__", None) or "").startswith(root):
                del sys.modules[name]
