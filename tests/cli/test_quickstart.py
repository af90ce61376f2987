from __future__ import annotations

from pathlib import Path

from tests.proc import run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_seed_quick_start_runs_helloworld_with_kwargs() -> None:
    code, out = run("run", "example.helloworld:hi=Ozzy", cwd=EXAMPLES)
    assert code == 0, out
    assert "hello world! {'hi': 'Ozzy'}" in out
