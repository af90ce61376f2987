"""The seed's console script, ``os-aio-pod``: the ``aiopod`` command under its old name."""

from __future__ import annotations

import sys


def main() -> None:
    """Say once that the command is now ``aiopod``, then run it with the same arguments."""
    from aiopod.__main__ import main as aiopod_main

    print("aiopod: warning: 'os-aio-pod' is deprecated; run 'aiopod' (same commands and options)", file=sys.stderr)
    aiopod_main(prog_name="os-aio-pod")
