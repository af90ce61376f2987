"""Optional dependencies are imported by their own adapter only, never by the runtime or the scaffolds."""

from __future__ import annotations

import json
import subprocess
import sys

OPTIONAL = ("uvicorn", "aiohttp", "aiomonitor")


def imported_after(*modules: str) -> list[str]:
    code = (
        f"import json, sys\nfor name in {modules!r}: __import__(name)\n"
        f"print(json.dumps(sorted(m for m in {OPTIONAL!r} if m in sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    names: list[str] = json.loads(result.stdout)
    return names


def test_the_runtime_and_the_scaffolds_import_no_optional_dependency() -> None:
    scaffolds = ["simple", "pcflow", "fromstdin", "tcp_server"]
    assert imported_after("aiopod", "aiopod.pod", *(f"aiopod.contrib.{name}" for name in scaffolds)) == []


def test_each_adapter_imports_only_its_own_dependency() -> None:
    assert imported_after("aiopod.contrib.uvicorn") == ["uvicorn"]
    assert "uvicorn" not in imported_after("aiopod.contrib.aiohttp")
    assert "uvicorn" not in imported_after("aiopod.contrib.aiomonitor")  # aiomonitor itself needs aiohttp
