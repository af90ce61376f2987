"""The one place aiopod touches the cyclic garbage collector: ``frozen()``, around bursts."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def frozen() -> Iterator[None]:
    """Leave every object alive now out of the collector's passes until the block ends.

    A pod starting or stopping 100k beans makes and frees hundreds of thousands of
    objects in a burst; each full collection on the way walks the whole heap, bean
    records included, and they cost half the stop of 100k idle beans (2.2 s -> 1.1 s of
    CPU measured with the collector off) and a third of their start. ``gc.freeze()``
    moves what exists into a generation the collector skips; the code that runs in the
    block, user code included, runs with the collector on and its cycles are found as
    usual. ``gc.unfreeze()`` at the end gives the frozen objects back to it. An
    application that freezes or disables the collector itself is left alone.
    """
    if gc.get_freeze_count() or not gc.isenabled():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
