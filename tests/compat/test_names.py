"""``os_aio_pod``: every name the seed documented is the aiopod object, with one warning per process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# (seed module, name, the aiopod module it now lives in)
NAMES = [
    ("os_aio_pod.decorators", "pass_context", "aiopod.decorators"),
    ("os_aio_pod.contrib.simple", "Server", "aiopod.contrib.simple"),
    ("os_aio_pod.contrib.pcflow", "Server", "aiopod.contrib.pcflow"),
    ("os_aio_pod.contrib.fromstdin", "Server", "aiopod.contrib.fromstdin"),
    ("os_aio_pod.contrib.tcp_server", "Server", "aiopod.contrib.tcp_server"),
    ("os_aio_pod.contrib.tcp_server", "TCPServerAdapter", "aiopod.contrib.tcp_server"),
    ("os_aio_pod.contrib.uvicorn", "UvicornAdapter", "aiopod.contrib.uvicorn"),
    ("os_aio_pod.contrib.aiohttp", "WebAdapter", "aiopod.contrib.aiohttp"),
    ("os_aio_pod.contrib.aiomonitor", "AioMonitorAdapter", "aiopod.contrib.aiomonitor"),
    ("os_aio_pod.contrib.ptpython", "TelnetServerAdapter", "aiopod.contrib.ptpython"),
]


def python(source: str) -> subprocess.CompletedProcess[str]:
    """Run ``source`` in a fresh interpreter (the warning is once per process)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)], capture_output=True, text=True, timeout=60, check=False
    )


def test_every_documented_name_is_the_aiopod_object_and_one_warning_names_the_new_path() -> None:
    proc = python(
        f"""
        import importlib, json, warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            same = [
                getattr(importlib.import_module(old), name) is getattr(importlib.import_module(new), name)
                for old, name, new in {NAMES!r}
            ]
            from os_aio_pod.examples.hello_world import HelloWorld
        print(json.dumps({{
            "same": same,
            "warnings": [(w.category.__name__, issubclass(w.category, DeprecationWarning), str(w.message))
                         for w in caught if "os_aio_pod" in str(w.message)],
            "hello": HelloWorld.__call__.__qualname__,
        }}))
        """
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["same"] == [True] * len(NAMES)
    assert result["warnings"] == [
        [
            "AiopodDeprecationWarning",
            True,
            "os_aio_pod.decorators is deprecated: import from aiopod.decorators (the same objects); "
            "os_aio_pod is now aiopod",
        ]
    ]
    assert result["hello"] == "HelloWorld.__call__"


def test_the_warning_points_at_the_importing_line() -> None:
    proc = python(
        """
        import warnings
        warnings.simplefilter("always")
        from os_aio_pod.contrib.simple import Server
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[0] == (
        "<string>:4: AiopodDeprecationWarning: os_aio_pod.contrib.simple is deprecated: "
        "import from aiopod.contrib.simple (the same objects); os_aio_pod is now aiopod"
    )


def test_the_seed_decorator_path_imports_no_console_or_server_code() -> None:
    proc = python(
        """
        import sys, warnings
        warnings.simplefilter("ignore")
        import os_aio_pod.decorators
        heavy = {"ptpython", "prompt_toolkit", "click", "uvicorn", "aiohttp", "aiopod.console", "aiopod.contrib"}
        print(sorted(heavy & set(sys.modules)))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[]\n"


def test_version_attribute_warns_and_gives_aiopods_version() -> None:
    proc = python(
        """
        import warnings
        warnings.simplefilter("error")
        import os_aio_pod
        try:
            os_aio_pod.__version__
        except DeprecationWarning as exc:
            print("warned:", exc)
        import aiopod
        print(os_aio_pod.__version__ == aiopod.__version__)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "warned: os_aio_pod.__version__ is deprecated: import from aiopod.__version__ (the same objects); "
        "os_aio_pod is now aiopod",
        "True",
    ]
