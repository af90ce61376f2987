"""The telnet console's door: who may wait to log in, how often a password is tried, what is logged.

Each piece is a plain object driven by the server's loop clock; none of them sleeps or reads.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

#: Seconds between two password checks from one host after a wrong one; doubles per failure.
PEER_INTERVAL = 1.0
#: Doublings of ``PEER_INTERVAL`` at most (1, 2, 4, 8, 16 s).
PEER_BACKOFF_STEPS = 4
#: Seconds between two password checks from anywhere (10 per second over all hosts).
OVERALL_INTERVAL = 0.1
#: A password attempt that would wait longer than this for its turn is refused at once.
MAX_QUEUE = 5.0
#: Hosts remembered by the limiter (the oldest are forgotten first).
MAX_HOSTS = 4096


class PasswordCheck:
    """Compare passwords without keeping the password: an HMAC digest under a random key.

    ``TelnetConsole`` takes one as its ``password`` too (``--telnet`` passes one), so that
    not even the bean's kwargs hold the password.
    """

    def __init__(self, password: str) -> None:
        self._key = os.urandom(32)
        self._digest = self._mac(password.encode())

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def matches(self, attempt: bytes) -> bool:
        return hmac.compare_digest(self._mac(attempt), self._digest)

    def __repr__(self) -> str:
        return "PasswordCheck(<hidden>)"


@dataclass
class _Host:
    next: float = 0.0  # when this host's next password may be checked
    failures: int = 0


class LoginLimiter:
    """Spaces password checks per host and overall; a client cannot cut its wait short.

    ``reserve()`` books the turn *before* anything is checked and counts it as if it
    failed, so closing the connection, or opening thirty in parallel, gains nothing:
    the password is only compared when the turn comes. A host without wrong attempts
    (and a quiet console) gets its turn at once.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.hosts: OrderedDict[str, _Host] = OrderedDict()
        self.next_any = 0.0
        self.checked = 0  # passwords compared
        self.wrong = 0  # wrong ones among them
        self.refused = 0  # attempts turned away: their host or the console had too many queued

    def reserve(self, host: str) -> float | None:
        """Seconds to wait before this host's password may be compared, or None: refused now."""
        now = self.clock()
        state = self.hosts.get(host)
        if state is None:
            state = self.hosts[host] = _Host()
            while len(self.hosts) > MAX_HOSTS:
                self.hosts.popitem(last=False)
        self.hosts.move_to_end(host)
        turn = max(now, state.next, self.next_any)
        if turn - now > MAX_QUEUE:
            self.refused += 1
            return None
        state.next = turn + PEER_INTERVAL * 2 ** min(state.failures, PEER_BACKOFF_STEPS)
        self.next_any = turn + OVERALL_INTERVAL
        return turn - now

    def retry_after(self, host: str) -> float:
        """Seconds until ``host`` could be given a turn again."""
        state = self.hosts.get(host)
        start = max(state.next if state is not None else 0.0, self.next_any) - MAX_QUEUE
        return max(0.0, start - self.clock())

    def record(self, host: str, right: bool) -> None:
        """The outcome of a compared password."""
        self.checked += 1
        state = self.hosts.setdefault(host, _Host())
        if right:
            state.failures = 0
            state.next = min(state.next, self.clock())
        else:
            self.wrong += 1
            state.failures += 1


K = TypeVar("K", bound=Hashable)


class PendingPool(Generic[K]):
    """Connections still negotiating or logging in, at most ``limit`` and ``per_host`` per host.

    A full pool makes room by evicting (slowloris: slow connections must not lock
    everyone out): one of the newcomer's host when that host is at its cap, else one of
    the host holding the most; the oldest that has not negotiated a terminal yet, else
    the oldest. A newcomer is never refused.
    """

    def __init__(self, limit: int, per_host: int) -> None:
        self.limit = limit
        self.per_host = per_host
        self._by_host: dict[str, OrderedDict[K, bool]] = {}  # item -> negotiated
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def items(self) -> list[K]:
        return [item for items in self._by_host.values() for item in items]

    def add(self, item: K, host: str) -> K | None:
        """Add ``item``; return the one evicted to make room for it, if any."""
        victims = None
        mine = self._by_host.get(host)
        if mine is not None and len(mine) >= self.per_host:
            victims = mine
        elif self._count >= self.limit:
            victims = max(self._by_host.values(), key=len)
        evicted = None
        if victims is not None:
            evicted = next((i for i, negotiated in victims.items() if not negotiated), next(iter(victims)))
            self.discard(evicted)
        self._by_host.setdefault(host, OrderedDict())[item] = False
        self._count += 1
        return evicted

    def negotiated(self, item: K) -> None:
        """``item`` has a terminal: it is evicted after the ones that do not."""
        for items in self._by_host.values():
            if item in items:
                items[item] = True
                return

    def discard(self, item: K) -> None:
        for host, items in self._by_host.items():
            if item in items:
                del items[item]
                self._count -= 1
                if not items:
                    del self._by_host[host]
                return


class LogThrottle:
    """One line per ``window`` seconds for an event that an attacker can repeat at will.

    The first event is logged at once; the ones after it are counted and summed up in
    one line when the window ends (or at :meth:`flush`).
    """

    def __init__(self, logger: logging.Logger, window: float = 10.0) -> None:
        self.logger = logger
        self.clock = time.monotonic
        self.window = window
        self._last: dict[str, float] = {}
        self._held: dict[str, tuple[int, str]] = {}  # what -> (count, last detail)

    def warning(self, what: str, detail: str) -> None:
        """Log ``telnet: <what> (<detail>)``, or count it when one was logged lately."""
        now = self.clock()
        if now - self._last.get(what, -self.window) >= self.window:
            self._last[what] = now
            self.logger.warning("telnet: %s (%s)", what, detail)
            return
        count, _ = self._held.get(what, (0, detail))
        if count == 0:
            asyncio.get_running_loop().call_later(self._last[what] + self.window - now, self._summary, what)
        self._held[what] = (count + 1, detail)

    def _summary(self, what: str) -> None:
        count, detail = self._held.pop(what, (0, ""))
        if count:
            self._last[what] = self.clock()
            self.logger.warning("telnet: %s: %d more in the last %g s (the last: %s)", what, count, self.window, detail)

    def flush(self) -> None:
        for what in list(self._held):
            self._summary(what)


__all__ = ["LogThrottle", "LoginLimiter", "PasswordCheck", "PendingPool"]
