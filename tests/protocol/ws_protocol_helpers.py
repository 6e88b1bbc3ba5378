"""Helpers shared by the sans-IO WebSocket tests (conftest is not importable)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    Request,
)
from wsproto.events import Event as ClientEvent
from wsproto.extensions import PerMessageDeflate

from trio_asgi._protocol._websocket import WebSocketConnection
from trio_asgi._protocol._ws_events import NEED_DATA, Event
from trio_asgi._protocol._ws_handshake import Handshake, validate_handshake

TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


MASK = b"\x37\xfa\x21\x3d"


def raw_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = MASK,
    length: int | None = None,
) -> bytes:
    """A client frame with every field as given (``rsv``: RSV1 is 4, RSV2 2, RSV3 1)."""
    size = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    masked = 0x80 if mask is not None else 0
    if size < 126:
        head = bytes([first, masked | size])
    elif size < 0x10000:
        head = bytes([first, masked | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([first, masked | 127]) + size.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


def start(
    *,
    subprotocols: Sequence[str] = (),
    extensions: Sequence[PerMessageDeflate] = (),
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
    trailing: bytes = b"",
    **options: Any,
) -> tuple[WSConnection, Handshake, WebSocketConnection]:
    """A client whose upgrade request (plus ``trailing`` bytes) the server has parsed."""
    client = WSConnection(ConnectionType.CLIENT)
    request = Request(
        host="example.com",
        target="/ws",
        subprotocols=list(subprotocols),
        extensions=list(extensions),
        extra_headers=list(extra_headers),
    )
    parser = h11.Connection(h11.SERVER)
    parser.receive_data(client.send(request) + trailing)
    event = parser.next_event()
    assert isinstance(event, h11.Request)
    assert isinstance(parser.next_event(), h11.EndOfMessage)
    assert parser.next_event() is h11.PAUSED  # h11 stops at the upgrade
    handshake = validate_handshake(event.method, event.http_version, list(event.headers))
    assert isinstance(handshake, Handshake)
    ws = WebSocketConnection(handshake, trailing_data=parser.trailing_data[0], **options)
    return client, handshake, ws


def open_pair(
    subprotocol: str | None = None, **kwargs: Any
) -> tuple[WSConnection, WebSocketConnection]:
    client, _, ws = start(**kwargs)
    accepted = client_sees(client, ws.accept(subprotocol))
    assert len(accepted) == 1
    assert isinstance(accepted[0], AcceptConnection)
    return client, ws


def drain(ws: WebSocketConnection) -> list[Event]:
    events: list[Event] = []
    while (event := ws.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def feed(ws: WebSocketConnection, data: bytes) -> list[Event]:
    ws.receive_data(data)
    return drain(ws)


def client_sees(client: WSConnection, data: bytes) -> list[ClientEvent]:
    client.receive_data(data)
    return list(client.events())


def parse_http(data: bytes) -> tuple[h11.Response, bytes]:
    """An HTTP response as an h11 client reads it, up to the connection's close."""
    parser = h11.Connection(h11.CLIENT)
    parser.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
    parser.send(h11.EndOfMessage())
    parser.receive_data(data)
    parser.receive_data(b"")
    response = parser.next_event()
    assert isinstance(response, h11.Response)
    body = b""
    while isinstance(event := parser.next_event(), h11.Data):
        body += event.data
    assert isinstance(event, h11.EndOfMessage)
    return response, body
