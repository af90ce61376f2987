"""``python -m aiopod`` and the ``aiopod`` command."""

from __future__ import annotations

from . import _early


def main(prog_name: str = "aiopod") -> None:
    """Hold the process signals first (importing the CLI and the runtime takes a while), then run it."""
    _early.hold()
    try:
        from .cli import main as cli

        cli(prog_name=prog_name)
    finally:
        _early.release()  # a command that never ran a pod: a signal held meanwhile acts now


if __name__ == "__main__":
    main()
