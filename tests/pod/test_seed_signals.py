"""Seed-style signal handlers (``kwargs["keys"]``, ``senders``) keep working; aiopod ones see nothing new."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from aiopod.pod import BeanContext, pass_context
from aiopod.pod.signals import seed_kwargs
from aiopod.testing import start_pod

from .helpers import arun

calls: dict[str, dict[str, Any]] = {}


def seed_style(**kwargs: Any) -> None:  # the seed's tcp_server: for sig in kwargs["keys"]
    calls["seed"] = {"keys": set(kwargs["keys"]), "senders": kwargs["senders"]}


def aiopod_style(**kwargs: Any) -> None:
    calls["aiopod"] = kwargs


def named(signal: str, path: str = "") -> None:  # would raise TypeError if it were given keys or senders
    calls["named"] = {"signal": signal, "path": path}


def only_keys(signal: str, keys: frozenset[str], path: str = "") -> None:
    calls["only_keys"] = {"signal": signal, "keys": set(keys), "path": path}


class Callable_:
    async def __call__(self, **kwargs: Any) -> None:
        calls["object"] = {"senders": kwargs.get("senders")}


def test_which_handlers_get_the_seed_arguments_is_decided_from_the_handler() -> None:
    assert seed_kwargs(seed_style) == ("keys", "senders")
    assert seed_kwargs(aiopod_style) == ()
    assert seed_kwargs(named) == ()
    assert seed_kwargs(only_keys) == ("keys",)
    assert seed_kwargs(Callable_()) == ("keys", "senders")
    assert seed_kwargs(functools.partial(seed_style)) == ("keys", "senders")


def test_seed_handlers_get_keys_and_senders_and_the_others_are_called_as_before() -> None:
    ready = asyncio.Event()

    @pass_context(label="listener")
    async def listener(context: BeanContext) -> None:
        for handler in (seed_style, aiopod_style, named, only_keys, Callable_()):
            await context.add_signal_handler("reload", handler)
        ready.set()
        await asyncio.Event().wait()

    async def main() -> None:
        calls.clear()
        async with start_pod(listener) as harness:
            await asyncio.wait_for(ready.wait(), 5)
            results = await harness.send_signal("reload", path="/etc/app.conf")
            assert [r.ok for r in results] == [True] * 5
            assert calls == {
                "seed": {"keys": {"reload"}, "senders": frozenset()},
                "aiopod": {"signal": "reload", "path": "/etc/app.conf"},
                "named": {"signal": "reload", "path": "/etc/app.conf"},
                "only_keys": {"signal": "reload", "keys": {"reload"}, "path": "/etc/app.conf"},
                "object": {"senders": frozenset()},
            }
            calls.clear()
            await harness.send_signal("reload", labels=["listener"], path="x")
            bean = harness.bean("listener")
            assert calls["seed"] == {"keys": {"reload"}, "senders": frozenset({bean})}
            assert calls["aiopod"] == {"signal": "reload", "path": "x"}

    arun(main())
