from __future__ import annotations

from typing import Any

import pytest

from aiopod.pod import Kind, pass_context
from aiopod.pod.bean import classify
from aiopod.pod.context import default_label


async def coroutine_function(**kwargs: Any) -> None:
    pass


class ClassBean:
    def __init__(self, context: Any) -> None:
        self.context = context

    async def __call__(self, **kwargs: Any) -> None:
        pass


@pass_context
async def with_context(context: Any, **kwargs: Any) -> None:
    pass


@pass_context(label="named")
async def with_context_label(context: Any, **kwargs: Any) -> None:
    pass


def plain_function(**kwargs: Any) -> None:
    pass


class PlainClass:
    def __init__(self, context: Any) -> None:
        pass


class SyncCallClass:
    def __call__(self, **kwargs: Any) -> None:
        pass


def test_classify_a_coroutine_object() -> None:
    coro = coroutine_function()
    try:
        assert classify(coro) is Kind.COROUTINE
    finally:
        coro.close()


def test_classify_a_coroutine_function() -> None:
    assert classify(coroutine_function) is Kind.FUNCTION


def test_classify_a_class_with_async_call() -> None:
    assert classify(ClassBean) is Kind.CLASS


def test_classify_pass_context_functions() -> None:
    assert classify(with_context) is Kind.PASS_CONTEXT
    assert classify(with_context_label) is Kind.PASS_CONTEXT
    assert default_label(with_context) is None
    assert default_label(with_context_label) == "named"
    assert default_label(coroutine_function) is None


def test_pass_context_needs_an_async_function() -> None:
    with pytest.raises(TypeError, match="@pass_context needs an 'async def' function"):
        pass_context(plain_function)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (plain_function, "a plain (not async) function is not a bean"),
        (print, "a plain (not async) callable is not a bean"),
        (SyncCallClass(), "a plain (not async) callable is not a bean"),
        (42, "int is not a bean"),
        ("tests.pod.test_bean.coroutine_function", "str is not a bean"),
    ],
)
def test_classify_names_what_a_non_bean_is_and_what_would_do(obj: Any, message: str) -> None:
    with pytest.raises(TypeError) as info:
        classify(obj)
    assert str(info.value) == (
        f"{message}: give a coroutine function, a coroutine object, "
        "a class with 'async def __call__', or an @pass_context async function"
    )


@pytest.mark.parametrize("cls", [PlainClass, SyncCallClass])
def test_classify_a_class_without_async_call(cls: type) -> None:
    with pytest.raises(TypeError) as info:
        classify(cls)
    assert str(info.value) == (
        f"class {cls.__qualname__} has no 'async def __call__(self, **kwargs)'; "
        "a bean class needs __init__(self, context) and an async __call__"
    )
