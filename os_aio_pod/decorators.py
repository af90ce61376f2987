"""``os_aio_pod.decorators``: now ``aiopod.decorators`` (or ``from aiopod import pass_context``)."""

from __future__ import annotations

from aiopod.decorators import pass_context

from . import deprecated

deprecated(__name__, "aiopod.decorators")


__all__ = ["pass_context"]
