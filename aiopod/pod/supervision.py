"""Restart policies: when a bean that ended is started again."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from .errors import ConfigError

Policy = Literal["no", "on-failure", "always"]
POLICIES: tuple[Policy, ...] = ("no", "on-failure", "always")
MAX_BACKOFF = 30.0


class RestartPolicy(NamedTuple):  # not a dataclass: building one costs ~1 ms at every start (README row 3)
    """What a bean's ``restart`` asked for: restart with exponential backoff, at most ``max``
    times within ``window`` seconds. Settings only; each bean's history is a ``RestartBudget``."""

    policy: Policy = "no"
    max: int = 5
    window: float = 60.0
    backoff: float = 0.1

    def wants(self, failed: bool) -> bool:
        """Whether this policy restarts a bean that ended (``failed`` or not)."""
        return self.policy == "always" or (self.policy == "on-failure" and failed)


class RestartBudget:
    """The restarts one bean has had within its policy's window."""

    __slots__ = ("history", "policy")

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self.history: deque[float] = deque()

    def next_delay(self, now: float | None = None) -> float | None:
        """Record a restart and return its delay, or None when the budget is spent."""
        policy, history = self.policy, self.history
        now = time.monotonic() if now is None else now
        while history and now - history[0] > policy.window:
            history.popleft()
        if len(history) >= policy.max:
            return None
        history.append(now)
        return float(min(policy.backoff * 2 ** (len(history) - 1), MAX_BACKOFF))


#: The largest whole number taken for max, window or backoff.
MAX_NUMBER = 1e15


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
        if isinstance(number, int) and not isinstance(number, bool) and number > MAX_NUMBER:
            problems.append(f"{key} is too large (at most {MAX_NUMBER:g})")  # float() would overflow (10**400)
        elif isinstance(number, bool) or not isinstance(number, int | float) or not number >= 0:  # nan too
            problems.append(f"{key} {number!r} must be a number >= 0")
        elif key != "window" and math.isinf(number):  # a window may be for ever; a delay may not
            problems.append(f"{key} {number!r} must be finite")
        elif key == "max" and not isinstance(number, int):
            problems.append(f"max {number!r} must be a whole number of restarts")
        parsed[key] = number
    if problems:
        raise ConfigError(problems)
    if policy == "no":
        return None
    return RestartPolicy(policy, int(parsed["max"]), float(parsed["window"]), float(parsed["backoff"]))
