"""Named signals: beans register handlers, anyone sends, only the addressed beans hear."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from inspect import isawaitable
from types import CodeType
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    from .bean import Bean

logger = logging.getLogger("aiopod.signals")

#: What sync handlers return most often: never awaitable, so skip asking.
_PLAIN = frozenset({type(None), bool, int, float, str, bytes, list, tuple, dict, set})


class HandlerResult:  # not a dataclass: building one costs ~1 ms at every start (README row 3)
    """What one handler did with a signal: returned ``value`` or raised ``error``."""

    __slots__ = ("bean", "error", "handler", "signal", "value")

    def __init__(
        self,
        signal: str,
        handler: Callable[..., Any],
        bean: Bean | None,
        value: Any = None,
        error: BaseException | None = None,
    ) -> None:
        self.signal = signal
        self.handler = handler
        self.bean = bean
        self.value = value
        self.error = error

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HandlerResult):
            return NotImplemented
        mine = (self.signal, self.handler, self.bean, self.value, self.error)
        return mine == (other.signal, other.handler, other.bean, other.value, other.error)

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        who = self.bean.describe() if self.bean is not None else "pod"
        name = getattr(self.handler, "__qualname__", repr(self.handler))
        outcome = f"raised {self.error!r}" if self.error is not None else f"returned {self.value!r}"
        return f"<HandlerResult {self.signal!r} {name} of {who} {outcome}>"


class _Registration:
    """One handler added for a signal (compared by identity: the same handler may be added twice)."""

    __slots__ = ("bean", "handler", "seed")

    def __init__(self, handler: Callable[..., Any], bean: Bean | None, seed: tuple[str, ...] = ()) -> None:
        self.handler = handler
        self.bean = bean
        #: The seed's keyword arguments this handler reads ("keys", "senders"); usually none.
        self.seed = seed

    def call(self, sig: str, senders: frozenset[Bean]) -> Callable[..., Any]:
        """What delivery calls: the handler itself, or the handler given the seed's kwargs too."""
        if not self.seed:
            return self.handler
        extra = {"keys": frozenset({sig}), "senders": senders}
        return functools.partial(_with_seed_kwargs, self.handler, {k: extra[k] for k in self.seed})


def _with_seed_kwargs(handler: Callable[..., Any], extra: dict[str, Any], **kwargs: Any) -> Any:
    return handler(**{**extra, **kwargs})  # what the sender passed wins


_SEED_KWARGS = ("keys", "senders")


@functools.lru_cache(maxsize=1024)
def _seed_kwargs_of_code(code: CodeType) -> tuple[str, ...]:
    named = code.co_varnames[code.co_posonlyargcount : code.co_argcount + code.co_kwonlyargcount]
    if code.co_flags & inspect.CO_VARKEYWORDS and _mentions(code, _SEED_KWARGS):
        return _SEED_KWARGS
    return tuple(name for name in _SEED_KWARGS if name in named)


def _mentions(code: CodeType, names: tuple[str, ...]) -> bool:
    """``kwargs["keys"]`` or ``kwargs.get("senders")`` in this code or the code nested in it."""
    return any(
        (isinstance(const, str) and const in names) or (isinstance(const, CodeType) and _mentions(const, names))
        for const in code.co_consts
    )


def seed_kwargs(handler: Callable[..., Any]) -> tuple[str, ...]:
    """The seed's handler arguments that ``handler`` reads: ``keys`` and/or ``senders``, or none.

    os-aio-pod called every handler with ``keys`` (the set of signal names that fired) and
    ``senders`` (the beans it was sent to). A handler that takes them as parameters, or
    takes ``**kwargs`` and reads ``kwargs["keys"]`` / ``kwargs.get("senders")``, still gets
    them; every other handler is called exactly as before, with ``signal`` and the sender's
    kwargs. Decided once, when the handler is added.
    """
    code = getattr(handler, "__code__", None)  # a function or bound method: the common, fast case
    if isinstance(code, CodeType) and getattr(handler, "__wrapped__", None) is None:
        return _seed_kwargs_of_code(code)
    target: Any = handler
    while isinstance(target, functools.partial):
        target = target.func
    target = inspect.unwrap(getattr(target, "__func__", target))
    code = getattr(target, "__code__", None)
    if not isinstance(code, CodeType):  # an object with __call__
        call = inspect.getattr_static(type(target), "__call__", None)
        code = getattr(getattr(call, "__func__", call), "__code__", None)
    return _seed_kwargs_of_code(code) if isinstance(code, CodeType) else ()


class SignalHub:
    """The handlers registered for each named signal, and their delivery.

    Handlers are kept per signal in registration order and indexed by bean, so that a
    bean ending (10k of them at a stop) drops its handlers in O(its handlers).
    """

    def __init__(self) -> None:
        self._handlers: dict[str, dict[_Registration, None]] = {}
        self._by_bean: dict[int, list[tuple[str, _Registration]]] = {}
        #: The ids of the beans that have registered handlers (a live, read-only view): the
        #: supervisor asks ``forget`` only of those at a bean's end (most beans register
        #: none, and a call per bean is ~1% of a pod starting a bean per job, issue 14).
        self.bean_ids = self._by_bean.keys()
        # Per signal, its registrations and their handlers as tuples, made at the first send
        # after a change: a send copies nothing, and handlers may add or remove others.
        self._snapshots: dict[str, tuple[tuple[_Registration, ...], tuple[Callable[..., Any], ...]]] = {}

    def add(self, sig: str, handler: Callable[..., Any], bean: Bean | None = None) -> None:
        if not callable(handler):
            raise TypeError(f"signal handler for {sig!r} must be callable, got {handler!r}")
        reg = _Registration(handler, bean, seed_kwargs(handler))
        self._handlers.setdefault(sig, {})[reg] = None
        self._snapshots.pop(sig, None)
        if bean is not None:
            self._by_bean.setdefault(bean.id, []).append((sig, reg))

    def remove(self, sig: str, handler: Callable[..., Any], bean: Bean | None = None) -> bool:
        registrations = self._handlers.get(sig, {})
        for reg in registrations:
            if reg.bean is bean and reg.handler == handler:
                del registrations[reg]
                self._snapshots.pop(sig, None)
                if bean is not None:
                    self._by_bean[bean.id].remove((sig, reg))
                return True
        return False

    def forget(self, bean: Bean) -> None:
        """Drop every handler ``bean`` registered (it has ended)."""
        for sig, reg in self._by_bean.pop(bean.id, ()):
            self._handlers[sig].pop(reg, None)
            self._snapshots.pop(sig, None)

    def count(self, sig: str) -> int:
        return len(self._handlers.get(sig, ()))

    def _snapshot(
        self, sig: str, labels: str | Iterable[str] | None
    ) -> tuple[tuple[_Registration, ...], tuple[Callable[..., Any], ...]]:
        if labels is not None:
            wanted = {labels} if isinstance(labels, str) else set(labels)
            chosen = tuple(r for r in self._handlers.get(sig, ()) if r.bean is not None and r.bean.label in wanted)
            senders = frozenset(r.bean for r in chosen if r.bean is not None)
            return chosen, tuple(r.call(sig, senders) for r in chosen)
        snapshot = self._snapshots.get(sig)
        if snapshot is None:
            registrations = tuple(self._handlers.get(sig, ()))
            calls = tuple(r.call(sig, frozenset()) for r in registrations)
            snapshot = self._snapshots[sig] = (registrations, calls)
        return snapshot

    async def send(self, sig: str, labels: str | Iterable[str] | None = None, **kwargs: Any) -> SignalResults:
        """Call the matching handlers concurrently and report what each one did.

        ``labels`` limits delivery to handlers registered by beans with one of those
        labels. A failing handler is logged and reported; it never stops the others.
        """
        registrations, handlers = self._snapshot(sig, labels)
        # The hot path (10k sync handlers at a stop) is one C-level extend over the calls; a
        # handler raising ends it, and the calls go on after that handler.
        outcomes: list[Any] = []
        awaiting: list[int] = []
        while len(outcomes) < len(handlers):
            rest = handlers[len(outcomes) :] if outcomes else handlers
            try:
                if kwargs:
                    outcomes.extend(handler(signal=sig, **kwargs) for handler in rest)
                else:
                    outcomes.extend(handler(signal=sig) for handler in rest)
            except BaseException as exc:  # SystemExit too: a handler must not skip the others
                outcomes.append(self._failed(sig, registrations[len(outcomes)], exc))
        if not _PLAIN.issuperset(map(type, outcomes)):
            awaiting = [i for i, out in enumerate(outcomes) if type(out) not in _PLAIN and isawaitable(out)]
        gathering = asyncio.gather(*(outcomes[i] for i in awaiting), return_exceptions=True) if awaiting else None
        if gathering is not None:
            for index, outcome in zip(awaiting, await gathering, strict=True):
                if isinstance(outcome, BaseException):
                    outcome = self._failed(sig, registrations[index], outcome)
                outcomes[index] = outcome
        return SignalResults(sig, registrations, outcomes)

    @staticmethod
    def _failed(sig: str, reg: _Registration, exc: BaseException) -> _Failure:
        who = f"of bean {reg.bean.describe()}" if reg.bean is not None else "registered on the pod"
        name = getattr(reg.handler, "__qualname__", repr(reg.handler))
        logger.error("handler %s %s failed on signal %r", name, who, sig, exc_info=exc)
        return _Failure(exc)


class _Failure:
    """A handler's exception among the values the others returned."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class SignalResults(Sequence[HandlerResult]):
    """What the handlers of one ``send_signal`` did: a read-only list of ``HandlerResult``.

    The results are made when they are looked at, so that a stop delivering a signal to
    10k handlers does not build 10k objects nobody reads.
    """

    __slots__ = ("_outcomes", "_registrations", "signal")

    def __init__(self, signal: str, registrations: tuple[_Registration, ...], outcomes: list[Any]) -> None:
        self.signal = signal
        self._registrations = registrations
        self._outcomes = outcomes

    def __len__(self) -> int:
        return len(self._outcomes)

    @overload
    def __getitem__(self, index: int) -> HandlerResult: ...
    @overload
    def __getitem__(self, index: slice) -> list[HandlerResult]: ...
    def __getitem__(self, index: int | slice) -> HandlerResult | list[HandlerResult]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        reg, outcome = self._registrations[index], self._outcomes[index]
        if type(outcome) is _Failure:
            return HandlerResult(self.signal, reg.handler, reg.bean, error=outcome.error)
        return HandlerResult(self.signal, reg.handler, reg.bean, outcome)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SignalResults | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return repr(list(self))
