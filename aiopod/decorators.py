"""The seed's import path for ``pass_context`` (``os_aio_pod.decorators``), kept for migration."""

from __future__ import annotations

from .pod.context import pass_context

__all__ = ["pass_context"]
