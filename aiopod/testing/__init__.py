"""Test your pods: in the test's loop (``start_pod``) or as subprocesses (``Proc``).

Installed as a pytest plugin, it adds the fixtures ``aiopod_pod`` and ``aiopod_process``.
"""

from __future__ import annotations

from .harness import PodHarness, PodProblem, start_pod, wait_until
from .process import Proc, aiopod, run

__all__ = ["PodHarness", "PodProblem", "Proc", "aiopod", "run", "start_pod", "wait_until"]
