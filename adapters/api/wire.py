"""Outgoing websocket messages below ASGI: a message's frame made once, written straight to each transport.

A server's frames are not masked, so the frame of a `next` message is the same bytes for every client of
the same subscription id. uvicorn's ASGI send frames each message again per connection (websockets' sans-I/O
serialiser) before its one `transport.write`; for 1,000 clients of an event that framing, and the
coroutine around it, was most of the fan-out. Here an open connection that takes bytes gets the shared
frame with one `transport.write`; anything else (a paused transport: a slow reader; a closing connection;
a server other than uvicorn's websockets-sansio; a negotiated compression extension) goes through the ASGI
send as before, so flow control and the slow-client rule are unchanged."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

FIN_TEXT = 0x81
"""FIN bit and the text opcode: a whole text message in one frame."""


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented text frame (RFC 6455 section 5.2), as a server sends it."""
    n = len(payload)
    if n < 126:
        return bytes((FIN_TEXT, n)) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", FIN_TEXT, 126, n) + payload
    return struct.pack("!BBQ", FIN_TEXT, 127, n) + payload


class Outgoing:
    """One text message for any number of clients: encoded and framed at most once."""

    __slots__ = ("text", "_frame")

    def __init__(self, text: str) -> None:
        self.text = text
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = text_frame(self.text.encode())
        return self._frame


FrameWriter = Callable[[bytes], bool]

_STATE = ("conn", "writable", "transport", "close_sent", "disconnected", "initial_response")
"""The attributes of uvicorn's websockets-sansio protocol (0.54) the writer reads."""


def frame_writer(send: Any) -> FrameWriter | None:
    """For the ASGI send of an accepted uvicorn websocket (websockets-sansio, no extension): a function
    writing a frame straight to its transport, True when written, False when the frame must go through the
    ASGI send instead (the transport paused writing, or the connection is closing or gone)."""
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from websockets.protocol import State

    protocol = getattr(send, "__self__", None)
    if not isinstance(protocol, WebSocketsSansIOProtocol) or not all(
        hasattr(protocol, name) for name in _STATE
    ):  # another server, or a uvicorn whose protocol keeps its state elsewhere: the ASGI send it is
        return None
    if protocol.conn.extensions:
        return None
    conn, writable = protocol.conn, protocol.writable

    def write(frame: bytes) -> bool:
        if (
            conn.state is not State.OPEN
            or not writable.is_set()
            or protocol.close_sent
            or protocol.disconnected
            or protocol.initial_response is not None
        ):
            return False
        protocol.transport.write(frame)
        return True

    return write
