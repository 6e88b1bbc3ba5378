"""A WebSocket-over-HTTP/2 client for tests (RFC 8441): h2 for the streams, wsproto's
frame layer for the WebSocket frames on each stream's DATA."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import h2.config
import h2.connection
import h2.events
import h2.settings
from wsproto.frame_protocol import FrameProtocol, Opcode

from trio_asgi import Server


@dataclass
class WSStream:
    """What one stream saw."""

    frames: FrameProtocol = field(default_factory=lambda: FrameProtocol(True, []))
    status: bytes | None = None
    headers: dict[bytes, bytes] = field(default_factory=dict)
    #: Whole messages (str or bytes), pongs (("pong", payload)) and the close (("close", code)).
    received: list[Any] = field(default_factory=list)
    body: bytes = b""
    ended: bool = False
    reset: int | None = None
    #: The client reads none of this stream's DATA into its window (a stalled reader).
    starved: bool = False
    #: Opened by an extended CONNECT: its DATA is WebSocket frames.
    websocket: bool = False
    #: The h2 events of this stream in order, by class name ("ResponseReceived", ...).
    events: list[str] = field(default_factory=list)


class H2WSClient:
    """Frames of our choosing on a TCP connection, events as h2 sees them."""

    def __init__(self, stream: anyio.abc.ByteStream, **settings: int) -> None:
        self.stream = stream
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=True, header_encoding=None, validate_outbound_headers=False
            )
        )
        self.conn.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        self.conn.initiate_connection()
        self.streams: dict[int, WSStream] = {}
        self.goaways: list[h2.events.ConnectionTerminated] = []
        self.settings_seen = False
        self._buffer = b""

    @property
    def server_settings(self) -> h2.settings.Settings:
        return self.conn.remote_settings

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            await self.stream.send(data)

    async def open(
        self,
        path: bytes = b"/ws",
        *,
        headers: list[tuple[bytes, bytes]] | None = None,
        pseudo: list[tuple[bytes, bytes]] | None = None,
        version: bytes = b"13",
    ) -> int:
        """An extended CONNECT (``pseudo`` replaces the pseudo-headers); its stream id."""
        stream_id = self.conn.get_next_available_stream_id()
        if pseudo is None:
            pseudo = [
                (b":method", b"CONNECT"),
                (b":protocol", b"websocket"),
                (b":scheme", b"http"),
                (b":path", path),
                (b":authority", b"localhost"),
            ]
        fields = [*pseudo, (b"sec-websocket-version", version), *(headers or [])]
        self.conn.send_headers(stream_id, fields)
        self.streams[stream_id] = WSStream(websocket=True)
        await self.flush()
        return stream_id

    async def get(self, path: bytes) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", path)]
        self.conn.send_headers(stream_id, [*fields, (b":authority", b"localhost")], end_stream=True)
        self.streams[stream_id] = WSStream()
        await self.flush()
        return stream_id

    async def send(self, stream_id: int, data: bytes) -> None:
        self.conn.send_data(stream_id, bytes(data))
        await self.flush()

    async def send_message(self, stream_id: int, message: str | bytes) -> None:
        await self.send(stream_id, self.streams[stream_id].frames.send_data(message, fin=True))

    async def ping(self, stream_id: int, payload: bytes) -> None:
        await self.send(stream_id, self.streams[stream_id].frames.ping(payload))

    async def close(self, stream_id: int, code: int) -> None:
        await self.send(stream_id, self.streams[stream_id].frames.close(code, "bye"))

    async def pump(self) -> bool:
        """Read once and handle what came; False at EOF."""
        try:
            data = await self.stream.receive(65536)
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return False
        self._buffer += data
        while len(self._buffer) >= 9:
            end = 9 + int.from_bytes(self._buffer[:3], "big")
            if len(self._buffer) < end:
                break
            frame, self._buffer = self._buffer[:end], self._buffer[end:]
            for event in self.conn.receive_data(frame):
                self._handle(event)
        await self.flush()
        return True

    def _handle(self, event: Any) -> None:
        if isinstance(event, h2.events.RemoteSettingsChanged):
            self.settings_seen = True
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaways.append(event)
            if event.error_code == 0:  # let the named streams finish (RFC 9113 section 6.8)
                self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        sid = getattr(event, "stream_id", None)
        ws = self.streams.get(sid) if sid else None
        if ws is None:
            return
        ws.events.append(type(event).__name__)
        if isinstance(event, h2.events.ResponseReceived):
            ws.headers = dict(event.headers)
            ws.status = ws.headers[b":status"]
        elif isinstance(event, h2.events.DataReceived):
            if not ws.starved:
                self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
            elif event.flow_controlled_length:
                # A stalled stream keeps its own window shut, not the connection's.
                self.conn.increment_flow_control_window(event.flow_controlled_length)
            ws.body += event.data
            if ws.websocket and ws.status == b"200":
                self._frames(ws, event.data)
        elif isinstance(event, h2.events.StreamEnded):
            ws.ended = True
        elif isinstance(event, h2.events.StreamReset):
            ws.reset = event.error_code

    @staticmethod
    def _frames(ws: WSStream, data: bytes) -> None:
        ws.frames.receive_bytes(data)
        for frame in ws.frames.received_frames():
            if frame.opcode is Opcode.TEXT or frame.opcode is Opcode.BINARY:
                ws.received.append(frame.payload)
            elif frame.opcode is Opcode.PONG:
                ws.received.append(("pong", frame.payload))
            elif frame.opcode is Opcode.PING:  # never answered: a silent client
                ws.received.append(("ping", frame.payload))
            elif frame.opcode is Opcode.CLOSE:
                ws.received.append(("close", int(frame.payload[0])))

    async def until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            if not await self.pump():
                raise AssertionError("the server closed the connection")


class MemoryByteStream:
    """An in-memory client stream (trio's ``send_all``/``receive_some``, see
    ``memory_helpers``) as the anyio stream calls :class:`H2WSClient` makes."""

    def __init__(self, stream: Any) -> None:
        self.inner = stream

    async def send(self, data: bytes) -> None:
        await self.inner.send_all(data)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        data: bytes = await self.inner.receive_some(max_bytes)
        if not data:
            raise anyio.EndOfStream
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


async def open_memory_h2_ws(stream: Any, **settings: int) -> H2WSClient:
    """An :class:`H2WSClient` on an in-memory connection (for tests in virtual time)."""
    client = H2WSClient(MemoryByteStream(stream), **settings)  # type: ignore[arg-type]
    await client.flush()
    await client.until(lambda: client.settings_seen)
    return client


async def open_h2_ws(server: Server, **settings: int) -> H2WSClient:
    host, _, port = server.addresses[0].rpartition(":")
    client = H2WSClient(await anyio.connect_tcp(host, int(port)), **settings)
    await client.flush()
    await client.until(lambda: client.settings_seen)
    return client
