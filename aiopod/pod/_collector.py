"""The one place aiopod touches the cyclic garbage collector: ``frozen()``, around bursts."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator

#: What the permanent generation holds before anyone freezes: the interpreter's own objects
#: on Python 3.12 (375 on 3.12.1; none on 3.11 and 3.13). Only more than this is a freeze
#: made by the application.
_AT_START = gc.get_freeze_count()


def _nothing() -> None:
    pass


@contextlib.contextmanager
def frozen() -> Iterator[Callable[[], None]]:
    """Leave what is alive out of the collector's passes until the block ends.

    A pod starting or stopping 100k beans makes hundreds of thousands of objects in a
    burst, and each full collection on the way walks the whole heap again: measured on
    this project's machine, a third of a 100k-bean start and half of a 100k-bean stop.
    ``gc.freeze()`` moves what exists into a generation the collector skips, and the
    function this yields freezes again what the burst has made so far (call it between
    batches). The code that runs in the block, user code included, runs with the
    collector on: only cycles that were made and dropped inside the block wait for its
    end, when ``gc.unfreeze()`` hands everything back. An application that freezes or
    disables the collector itself is left alone.
    """
    if gc.get_freeze_count() > _AT_START or not gc.isenabled():
        yield _nothing
        return
    gc.freeze()
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()
