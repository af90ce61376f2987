"""aiopod's own tests use the subprocess helpers that ``aiopod.testing`` gives users."""

from aiopod.testing.process import Proc, aiopod, run

__all__ = ["Proc", "aiopod", "run"]
