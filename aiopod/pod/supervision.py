"""Restart policies: when a bean that ended is started again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ConfigError

Policy = Literal["no", "on-failure", "always"]
POLICIES: tuple[Policy, ...] = ("no", "on-failure", "always")
MAX_BACKOFF = 30.0


@dataclass(slots=True)
class RestartPolicy:
    """Restart with exponential backoff, at most ``max`` times within ``window`` seconds."""

    policy: Policy = "no"
    max: int = 5
    window: float = 60.0
    backoff: float = 0.1
    history: deque[float] = field(default_factory=deque, repr=False, compare=False)

    def wants(self, failed: bool) -> bool:
        """Whether this policy restarts a bean that ended (``failed`` or not)."""
        return self.policy == "always" or (self.policy == "on-failure" and failed)

    def next_delay(self, now: float | None = None) -> float | None:
        """Record a restart and return its delay, or None when the budget is spent."""
        now = time.monotonic() if now is None else now
        while self.history and now - self.history[0] > self.window:
            self.history.popleft()
        if len(self.history) >= self.max:
            return None
        self.history.append(now)
        return float(min(self.backoff * 2 ** (len(self.history) - 1), MAX_BACKOFF))


def parse_restart(value: Any) -> RestartPolicy | None:
    """``"no"``, ``"on-failure"``, ``"always"`` or a dict ``{"policy", "max", "window", "backoff"}``."""
    if value is None or value == "no":
        return None
    if isinstance(value, str):
        value = {"policy": value}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{value!r} is not a policy; use 'no', 'on-failure', 'always' or a dict")
    problems = []
    unknown = set(value) - {"policy", "max", "window", "backoff"}
    if unknown:
        problems.append(f"unknown keys {sorted(unknown)}; allowed: policy, max, window, backoff")
    policy = value.get("policy", "on-failure")
    if policy not in POLICIES:
        problems.append(f"policy {policy!r} is not one of 'no', 'on-failure', 'always'")
    parsed: dict[str, Any] = {}
    for key, default in {"max": 5, "window": 60.0, "backoff": 0.1}.items():
        number = value.get(key, default)
        if isinstance(number, bool) or not isinstance(number, int | float) or number < 0:
            problems.append(f"{key} {number!r} must be a number >= 0")
        elif key == "max" and not isinstance(number, int):
            problems.append(f"max {number!r} must be a whole number of restarts")
        parsed[key] = number
    if problems:
        raise ConfigError(problems)
    if policy == "no":
        return None
    return RestartPolicy(policy, int(parsed["max"]), float(parsed["window"]), float(parsed["backoff"]))


class LogThrottle:
    """At most ``limit`` detailed lines per ``window`` seconds, then one summary line.

    A restart storm (thousands of beans failing fast) must not flood the log.
    """

    def __init__(self, logger: logging.Logger, limit: int = 20, window: float = 5.0) -> None:
        self.logger = logger
        self.limit = limit
        self.window = window
        self._start = -window
        self._count = 0
        self._suppressed = 0
        self._flush: asyncio.TimerHandle | None = None

    def allow(self) -> bool:
        """Whether the next detailed line may be logged; counts the ones that may not."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self._start >= self.window:
            self._start, self._count = now, 0
        self._count += 1
        if self._count <= self.limit:
            return True
        self._suppressed += 1
        if self._flush is None:
            self._flush = loop.call_at(self._start + self.window, self.summary)
        return False

    def summary(self) -> None:
        """Log how many lines were held back (also called when the pod stops)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self._suppressed:
            self.logger.warning(
                "%d more bean failures and restarts were not logged one by one (more than %d in %g s); "
                "see ps() or pod.beans",
                self._suppressed, self.limit, self.window,
            )  # fmt: skip
            self._suppressed = 0
