"""Frames written below ASGI: the bytes equal what the websocket library would send, and a client given a
frame writer uses it while the transport takes bytes, the ASGI send (in order) when it does not."""

from __future__ import annotations

import asyncio

import pytest
from websockets.frames import Frame, Opcode

from adapters.api.hub import Client
from adapters.api.wire import Outgoing, frame_writer, text_frame

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536])
def test_a_text_frame_is_the_one_websockets_serialises(size: int) -> None:
    payload = ("x" * size).encode()
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert text_frame(payload) == expected


def test_an_outgoing_message_is_encoded_once() -> None:
    message = Outgoing('{"id":"1","type":"next","payload":{"data":{"x":"é"}}}')
    assert message.frame is message.frame
    assert message.frame == text_frame(message.text.encode())


def test_only_uvicorns_sansio_websocket_gets_a_frame_writer() -> None:
    async def send(message: object) -> None:
        return None

    assert frame_writer(send) is None
    assert frame_writer(None) is None


def test_a_client_writes_frames_while_taken_and_falls_back_to_the_asgi_send_in_order() -> None:
    async def main() -> tuple[list[bytes], list[str]]:
        written: list[bytes] = []
        sent: list[str] = []
        paused = False
        gate = asyncio.Event()

        def write(frame: bytes) -> bool:
            if paused:
                return False
            written.append(frame)
            return True

        async def send(text: str) -> None:
            await gate.wait()  # the transport is paused: the ASGI send waits for it to drain
            sent.append(text)

        async def close(code: int, reason: str) -> None:
            raise AssertionError("not too slow")

        client = Client(send, close, limit=10, write=write)
        client.offer("0")
        paused = True
        client.offer("1")  # refused by the writer: goes through the ASGI send, which waits
        paused = False
        client.offer("2")  # queued behind "1" although the writer would take it now
        assert written == [text_frame(b"0")] and client.sender is not None
        gate.set()
        await asyncio.sleep(0.01)
        client.offer("3")  # drained: frames again
        return written, sent

    written, sent = asyncio.run(main())
    assert sent == ["1", "2"]
    assert written == [text_frame(b"0"), text_frame(b"3")]


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 1) if name in ("sockname", "peername") else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def test_uvicorns_websocket_takes_frames_only_while_open_and_writable() -> None:
    """On the server's own protocol object (a changed uvicorn fails here, not silently in production)."""
    from uvicorn.config import Config
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from uvicorn.server import ServerState

    async def main() -> None:
        accepted, finish = asyncio.Event(), asyncio.Event()
        sends: list[object] = []

        async def app(scope: object, receive: object, send: object) -> None:
            await receive()  # type: ignore[operator]
            await send({"type": "websocket.accept"})  # type: ignore[operator]
            sends.append(send)
            accepted.set()
            await finish.wait()
            await send({"type": "websocket.close", "code": 1000})  # type: ignore[operator]
            finish.clear()

        config = Config(app=app, ws="websockets-sansio", ws_per_message_deflate=False, lifespan="off")
        config.load()
        protocol = WebSocketsSansIOProtocol(config, ServerState(), {}, _loop=asyncio.get_running_loop())
        transport = _Transport()
        protocol.connection_made(transport)
        protocol.data_received(b"GET /graphql HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")  # fmt: skip
        await asyncio.wait_for(accepted.wait(), 5)
        write = frame_writer(sends[0])
        assert write is not None
        transport.written.clear()
        frame = Outgoing('{"type":"next"}').frame
        assert write(frame) and bytes(transport.written) == frame
        protocol.pause_writing()  # the socket's buffer is full: the ASGI send (which waits) must take over
        assert not write(frame)
        protocol.resume_writing()
        finish.set()
        await asyncio.sleep(0.05)  # the app sends its close
        assert protocol.close_sent and not write(frame)

    asyncio.run(main())
