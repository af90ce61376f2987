"""The console socket's wire format: length-prefixed JSON frames, versioned.

A frame is a 4-byte big-endian length, then that many bytes of UTF-8 JSON: an object
with a ``"type"``. The client opens with ``hello`` (``protocol``, ``version``, ``want``:
``"session"`` or ``"info"``); the pod answers ``welcome`` (or ``info``) or ``error``
and closes. Then, client to pod:

- ``run`` {id, code}: run a statement; ``interrupt`` {id}: stop it;
- ``complete`` {id, text, cursor, requested}: completions for ``text`` at ``cursor``;
- ``stack`` {id}: where the pod's loop thread is right now; ``answer`` {id, value};
- ``bye``: the session ends.

Pod to client: ``output`` {data, stream} at any time, ``done`` {id, status, result,
error, plain} (``plain``: show the result as it is, not highlighted as Python),
``completions`` {id, items}, ``stack`` {id, text}, ``ask`` {id, question}, ``error``
{message} (then the pod closes the connection), ``bye`` {message}.

``json`` is imported by the first frame, not with this module: every pod imports it to
serve its socket, and a pod nobody attaches to never needs it (README row 3).
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

PROTOCOL = "aiopod-console"
VERSION = 1
#: Largest frame either side accepts; a statement or an output chunk is far smaller.
MAX_FRAME = 1 << 20
#: Output is sent in chunks of at most this many characters.
OUTPUT_CHUNK = 32 << 10
_HEADER = struct.Struct("!I")


class ProtocolError(Exception):
    """The other side sent something that is not a frame of this protocol."""


def encode(message: dict[str, Any]) -> bytes:
    """One frame."""
    import json  # see the module's docstring

    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(body)} bytes is over the {MAX_FRAME}-byte limit")
    return _HEADER.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    """The message in a frame's body."""
    import json

    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("a frame that is not UTF-8 JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("a frame that is not an object with a 'type'")
    return message


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next message, or None at a clean end of stream (between frames)."""
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise ProtocolError("the connection ended inside a frame header") from None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ProtocolError(f"a frame of {size} bytes is over the {MAX_FRAME}-byte limit")
    try:
        body = await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise ProtocolError("the connection ended inside a frame") from None
    return decode(body)


def check_hello(message: dict[str, Any]) -> str:
    """The ``want`` of a valid ``hello``; ProtocolError with the reason otherwise."""
    if message.get("type") != "hello" or message.get("protocol") != PROTOCOL:
        raise ProtocolError(f"expected a {PROTOCOL} hello, got a {message.get('type')!r} frame")
    version = message.get("version")
    if version != VERSION:
        raise ProtocolError(
            f"protocol version {version!r} is not supported (this pod speaks {VERSION}); "
            "use the aiopod of the same release as the pod"
        )
    want = message.get("want", "session")
    if want not in ("session", "info"):
        raise ProtocolError(f"hello asks for {want!r}; use 'session' or 'info'")
    return str(want)


def hello(want: str = "session", **extra: Any) -> dict[str, Any]:
    return {"type": "hello", "protocol": PROTOCOL, "version": VERSION, "want": want, **extra}
