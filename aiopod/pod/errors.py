"""The exceptions aiopod raises on purpose."""

from __future__ import annotations

from collections.abc import Iterable


class AiopodError(Exception):
    """Base class of every error aiopod raises on purpose."""


class ConfigError(AiopodError, ValueError):
    """A config file, a bean spec or an option is invalid; ``problems`` lists each one."""

    def __init__(self, problems: str | Iterable[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class BeanNotFound(AiopodError, LookupError):
    """No bean has the id or label that was asked for."""

    def __str__(self) -> str:  # LookupError would repr() the message otherwise
        return str(self.args[0]) if self.args else ""


class PodStateError(AiopodError, RuntimeError):
    """The pod cannot do this in its current state (for example: add a bean while stopping)."""
