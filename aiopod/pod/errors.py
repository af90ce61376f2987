"""The exceptions aiopod raises on purpose: ``AiopodError`` and a few that also subclass a builtin."""

from __future__ import annotations

from collections.abc import Iterable


class AiopodError(Exception):
    """Base class of every error aiopod raises on purpose."""


class ConfigError(AiopodError, ValueError):
    """A config file, a bean spec or an option is invalid; ``problems`` lists each one."""

    def __init__(self, problems: str | Iterable[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class _Message(AiopodError):
    """An error whose one argument is its whole message (a LookupError would repr() it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class BeanNotFound(_Message, LookupError):
    """No bean has the id or label that was asked for (or it ended and left the history)."""


class AmbiguousBean(_Message, LookupError):
    """One bean was asked for by a label that several beans share; ask by id."""


class PodStateError(AiopodError, RuntimeError):
    """The pod cannot do this in its current state (for example: add a bean while stopping)."""


class BindError(AiopodError, OSError):
    """A server bean could not listen on its address when it started (in use, not allowed)."""


class AttachError(_Message, ConnectionError):
    """The console client could not reach or talk to a running pod."""


class StartupInterrupted(BaseException):
    """A stop signal arrived while the config and the bean modules were still loading."""


class AiopodDeprecationWarning(DeprecationWarning):
    """A name or setting of os-aio-pod (the seed) was used; the message names the aiopod one."""
