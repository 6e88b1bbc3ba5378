"""The sans-IO WebSocket connection, driven by a real wsproto client and by raw frames.

``open_pair()`` runs a real handshake: a wsproto client's request, parsed by h11 as the
server does, validated, accepted; the client checks our 101. Frames a well-behaved
client would never send are written by ``raw_frame()``.
"""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.events import Event as ClientEvent
from wsproto.extensions import PerMessageDeflate

from trio_asgi import ASGIProtocolError, ClientDisconnected
from trio_asgi._protocol._response import DefaultHeaders
from trio_asgi._protocol._websocket import (
    NEED_DATA,
    Closer,
    CloseReceived,
    ConnectionLost,
    Event,
    Message,
    PingReceived,
    PongReceived,
    ProtocolViolation,
    WebSocketConnection,
    WebSocketState,
)
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


# --- the opening handshake ----------------------------------------------------------------------


def test_accept_is_a_101_the_client_accepts() -> None:
    client, _, ws = start(subprotocols=["chat", "superchat"])
    headers = [(b"x-hello", b"1"), (b"upgrade", b"h2c"), (b"sec-websocket-accept", b"forged")]
    (event,) = client_sees(client, ws.accept("superchat", headers))
    assert isinstance(event, AcceptConnection)
    assert event.subprotocol == "superchat"
    assert event.extra_headers == [(b"x-hello", b"1")]  # the app's copies of ours are dropped
    assert ws.state is WebSocketState.OPEN
    assert ws.subprotocol == "superchat"


def test_accept_adds_default_headers() -> None:
    defaults = DefaultHeaders(server_header=True, date_header=True, extra=())
    _, _, ws = start(defaults=defaults)
    head = ws.accept().lower()
    assert b"\r\nserver: trio-asgi/" in head
    assert b"\r\ndate: " in head


def test_an_unoffered_subprotocol_is_an_app_error() -> None:
    client, _, ws = start(subprotocols=["chat"])
    with pytest.raises(ASGIProtocolError, match="not offered"):
        ws.accept("other")
    assert ws.state is WebSocketState.HANDSHAKE
    (event,) = client_sees(client, ws.accept("chat"))
    assert isinstance(event, AcceptConnection)


@pytest.mark.parametrize(
    "header", [(b"Sec-WebSocket-Protocol", b"chat"), (b"x-a", b"1\r\nx-b: 2"), (b"x a", b"1")]
)
def test_bad_accept_headers_are_app_errors(header: tuple[bytes, bytes]) -> None:
    _, _, ws = start(subprotocols=["chat"])
    with pytest.raises(ASGIProtocolError):
        ws.accept(None, [header])
    assert ws.state is WebSocketState.HANDSHAKE


@pytest.mark.parametrize(
    ("enabled", "offers", "negotiated"),
    [
        (True, [PerMessageDeflate()], True),
        (False, [PerMessageDeflate()], False),
        (True, [], False),
    ],
)
def test_deflate_only_when_enabled_and_offered(
    enabled: bool, offers: list[PerMessageDeflate], negotiated: bool
) -> None:
    client, _, ws = start(extensions=offers, per_message_deflate=enabled)
    response = ws.accept()
    assert (b"Sec-WebSocket-Extensions" in response) is negotiated
    (event,) = client_sees(client, response)
    assert isinstance(event, AcceptConnection)
    assert bool(event.extensions) is negotiated
    assert ws.per_message_deflate is negotiated
    ws.receive_data(client.send(TextMessage("x" * 1000)))
    assert drain(ws) == [Message("x" * 1000)]
    assert client_sees(client, ws.send_message("y" * 1000)) == [
        TextMessage("y" * 1000, frame_finished=True, message_finished=True)
    ]


def test_an_offer_we_cannot_honour_is_declined_for_the_next() -> None:
    # zlib cannot compress with a 256-byte window; wsproto's client cannot even offer one.
    offers = (
        b"permessage-deflate; server_max_window_bits=8, "
        b"permessage-deflate; server_max_window_bits=10"
    )
    _, _, ws = start(extra_headers=[(b"sec-websocket-extensions", offers)])
    response = ws.accept()
    assert (
        b"\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n"
        in response
    )


@pytest.mark.parametrize(
    ("server", "client_"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_deflate_without_context_takeover(server: bool, client_: bool) -> None:
    offer = PerMessageDeflate(server_no_context_takeover=server, client_no_context_takeover=client_)
    client, ws = open_pair(extensions=[offer])
    for i in range(5):
        text = f"message {i} " * 50
        ws.receive_data(client.send(TextMessage(text)))
        assert drain(ws) == [Message(text)]
        (echo,) = client_sees(client, ws.send_message(text.encode()))
        assert isinstance(echo, BytesMessage)
        assert echo.data == text.encode()
    assert client_sees(client, ws.send_message(b"")) == [
        BytesMessage(b"", frame_finished=True, message_finished=True)
    ]


def test_reject_is_a_403_with_no_body() -> None:
    client, _, ws = start()
    data = ws.reject()
    assert ws.state is WebSocketState.REJECTED
    rejection = client_sees(client, data)[0]
    assert isinstance(rejection, RejectConnection)
    assert rejection.status_code == 403
    response, body = parse_http(data)
    assert (response.status_code, body) == (403, b"")
    assert (b"connection", b"close") in response.headers
    with pytest.raises(ASGIProtocolError):
        ws.accept()


def test_denial_response_with_content_length() -> None:
    client, _, ws = start()
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"10"), (b"connection", b"x")]
    assert ws.deny_start(401, headers) == b""
    assert ws.state is WebSocketState.DENYING
    data = ws.deny_body(b"go ", more_body=True) + ws.deny_body(b"away", more_body=True)
    data += ws.deny_body(b"!!!")
    assert ws.state is WebSocketState.REJECTED
    response, body = parse_http(data)
    assert response.status_code == 401
    assert body == b"go away!!!"
    assert (b"connection", b"close") in response.headers
    assert (b"connection", b"x") not in response.headers
    events = client_sees(client, data)
    assert isinstance(events[0], RejectConnection)
    assert events[0].status_code == 401
    body_events = [event for event in events if isinstance(event, RejectData)]
    assert b"".join(event.data for event in body_events) == b"go away!!!"
    assert body_events[-1].body_finished


def test_denial_response_without_length_ends_at_close() -> None:
    _, _, ws = start()
    ws.deny_start(404, [(b"transfer-encoding", b"chunked")])
    data = ws.deny_body(b"not ", more_body=True) + ws.deny_body(b"here")
    response, body = parse_http(data)
    assert response.status_code == 404
    assert body == b"not here"
    assert b"transfer-encoding" not in dict(response.headers)


def test_denial_body_must_match_content_length() -> None:
    _, _, ws = start()
    ws.deny_start(403, [(b"content-length", b"3")])
    with pytest.raises(ASGIProtocolError, match="more body"):
        ws.deny_body(b"four")
    ws.deny_body(b"ab", more_body=True)
    with pytest.raises(ASGIProtocolError, match="ended before"):
        ws.deny_body(b"")
    assert ws.state is WebSocketState.DENYING
    ws.deny_body(b"c")
    assert ws.state is WebSocketState.REJECTED


def test_denial_204_sends_no_body() -> None:
    _, _, ws = start()
    ws.deny_start(204, [(b"content-length", b"4")])
    data = ws.deny_body(b"body")
    assert data.endswith(b"\r\n\r\n")
    assert b"content-length" not in data


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (101, []),
        (199, []),
        (600, []),
        (200, [(b"content-length", b"x")]),
        (200, [(b"content-length", b"1"), (b"content-length", b"1")]),
        (200, [(b"x-a", b"\r\n")]),
    ],
)
def test_invalid_denial_starts(status: int, headers: list[tuple[bytes, bytes]]) -> None:
    _, _, ws = start()
    with pytest.raises(ASGIProtocolError):
        ws.deny_start(status, headers)
    assert ws.state is WebSocketState.HANDSHAKE


def test_bytes_after_the_handshake_request_are_kept() -> None:
    early = raw_frame(TEXT, b"early") + raw_frame(PING, b"p")
    client, _, ws = start(trailing=early)
    ws.receive_data(raw_frame(BINARY, b"before accept"))
    assert ws.next_event() is NEED_DATA  # nothing is parsed before accept
    client_sees(client, ws.accept())
    assert drain(ws) == [Message("early"), PingReceived(b"p"), Message(b"before accept")]
    assert client_sees(client, ws.pending_output()) == [Pong(b"p")]


def test_eof_during_the_handshake() -> None:
    _, _, ws = start()
    ws.receive_data(b"")
    assert drain(ws) == [ConnectionLost(1006, "")]
    assert ws.state is WebSocketState.CLOSED
    with pytest.raises(ClientDisconnected):
        ws.accept()


# --- messages -----------------------------------------------------------------------------------


@pytest.mark.parametrize("deflate", [False, True])
def test_echo_round_trips(deflate: bool) -> None:
    client, ws = open_pair(extensions=[PerMessageDeflate()] if deflate else [])
    messages: list[str | bytes] = [
        "",
        "hello",
        "caf\u00e9 \U0001f600" * 100,
        b"",
        b"\x00\xff" * 40000,
    ]
    for message in messages:
        event = TextMessage(message) if isinstance(message, str) else BytesMessage(message)
        assert feed(ws, client.send(event)) == [Message(message)]
        (echo,) = client_sees(client, ws.send_message(message))
        assert isinstance(echo, TextMessage | BytesMessage)
        assert echo.data == message


def test_fragments_are_reassembled_with_control_frames_between() -> None:
    _, ws = open_pair()
    euro = "\u20ac".encode()
    data = raw_frame(TEXT, b"a" + euro[:1], fin=False)  # a character split over two frames
    data += raw_frame(PING, b"in between")
    data += raw_frame(CONTINUATION, euro[1:] + b"b", fin=False)
    data += raw_frame(PONG, b"pong")
    data += raw_frame(CONTINUATION, b"c")
    data += raw_frame(BINARY, b"1", fin=False) + raw_frame(CONTINUATION, b"2")
    assert feed(ws, data) == [
        PingReceived(b"in between"),
        PongReceived(b"pong"),
        Message("a\u20acbc"),
        Message(b"12"),
    ]


def test_a_frame_arriving_byte_by_byte() -> None:
    client, ws = open_pair()
    data = client.send(TextMessage("x" * 300))
    events: list[Event] = []
    for i in range(len(data)):
        events += feed(ws, data[i : i + 1])
    assert events == [Message("x" * 300)]


def test_ping_pong() -> None:
    client, ws = open_pair()
    assert feed(ws, client.send(Ping(b"hello"))) == [PingReceived(b"hello")]
    assert client_sees(client, ws.pending_output()) == [Pong(b"hello")]
    assert ws.pending_output() == b""
    assert feed(ws, client.send(Pong(b"unsolicited"))) == [PongReceived(b"unsolicited")]
    assert client_sees(client, ws.send_ping(b"ours")) == [Ping(b"ours")]
    with pytest.raises(ValueError, match="125"):
        ws.send_ping(b"x" * 126)


def test_pending_pongs_go_out_before_our_next_frames() -> None:
    client, ws = open_pair()
    feed(ws, client.send(Ping(b"1")) + client.send(Ping(b"2")))
    data = ws.send_message("m") + ws.close(1000)
    assert client_sees(client, data) == [
        Pong(b"1"),
        Pong(b"2"),
        TextMessage("m", frame_finished=True, message_finished=True),
        CloseConnection(1000, ""),
    ]


# --- closing ------------------------------------------------------------------------------------


def test_client_closes_with_code_and_reason() -> None:
    client, ws = open_pair()
    assert feed(ws, client.send(CloseConnection(4321, "done h\u00e9re"))) == [
        CloseReceived(4321, "done h\u00e9re")
    ]
    assert ws.state is WebSocketState.CLOSED
    assert ws.closed_by is Closer.REMOTE
    assert ws.closing_handshake_done
    assert client_sees(client, ws.pending_output()) == [CloseConnection(4321, "")]
    with pytest.raises(ClientDisconnected):
        ws.send_message("too late")
    with pytest.raises(ClientDisconnected):
        ws.close()
    assert feed(ws, raw_frame(TEXT, b"after close")) == []


def test_client_close_without_code_is_1005() -> None:
    _, ws = open_pair()
    assert feed(ws, raw_frame(CLOSE)) == [CloseReceived(1005, "")]
    assert ws.pending_output() == b"\x88\x00"  # answered with an empty close frame
    assert ws.closing_handshake_done


def test_server_closes_first() -> None:
    client, ws = open_pair()
    data = ws.close(1001, "going away")
    assert ws.state is WebSocketState.LOCAL_CLOSING
    assert ws.closed_by is Closer.LOCAL
    assert not ws.closing_handshake_done
    assert client_sees(client, data) == [CloseConnection(1001, "going away")]
    with pytest.raises(ClientDisconnected):
        ws.send_message("x")
    with pytest.raises(ClientDisconnected):
        ws.send_ping()
    with pytest.raises(ClientDisconnected):
        ws.close()
    # Until the peer's close arrives we still read: messages are reported, pings not answered.
    assert feed(ws, raw_frame(TEXT, b"late") + raw_frame(PING)) == [
        Message("late"),
        PingReceived(b""),
    ]
    assert ws.pending_output() == b""
    assert feed(ws, client.send(CloseConnection(1001))) == [CloseReceived(1001, "")]
    assert ws.state is WebSocketState.CLOSED
    assert ws.closing_handshake_done
    assert ws.pending_output() == b""


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1011, 1012, 1014, 3000, 4999])
def test_valid_close_codes(code: int) -> None:
    _, ws = open_pair()
    assert ws.close(code, "r") == b"\x88\x03" + code.to_bytes(2, "big") + b"r"


def test_peer_close_codes_we_accept_are_echoed() -> None:
    for code in [1000, 1003, 1007, 1010, 1014, 3000, 4999]:  # Autobahn 7.7 and IANA's 1012-1014
        _, ws = open_pair()
        assert feed(ws, raw_frame(CLOSE, code.to_bytes(2, "big"))) == [CloseReceived(code, "")]
        assert ws.pending_output() == b"\x88\x02" + code.to_bytes(2, "big")


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000])
def test_reserved_close_codes_are_app_errors(code: int) -> None:
    _, ws = open_pair()
    with pytest.raises(ASGIProtocolError, match="may not be sent"):
        ws.close(code)
    assert ws.state is WebSocketState.OPEN


def test_close_reason_limit_is_123_utf8_bytes() -> None:
    client, ws = open_pair()
    for reason in ["x" * 124, "\u20ac" * 42, "\ud800"]:
        with pytest.raises(ASGIProtocolError, match="reason"):
            ws.close(1000, reason)
    assert client_sees(client, ws.close(1000, "\u20ac" * 41)) == [
        CloseConnection(1000, "\u20ac" * 41)
    ]


@pytest.mark.parametrize(
    "data",
    [b"", raw_frame(TEXT, b"xxxxxxxx")[:5]],
    ids=["idle", "mid-frame"],
)
def test_eof_without_close_frame_is_1006(data: bytes) -> None:
    _, ws = open_pair()
    events = feed(ws, data)
    events += feed(ws, b"")
    assert events == [ConnectionLost(1006, "")]
    assert ws.state is WebSocketState.CLOSED
    assert ws.closed_by is Closer.REMOTE
    assert not ws.closing_handshake_done
    with pytest.raises(ClientDisconnected):
        ws.send_message("x")


def test_messages_before_eof_are_delivered() -> None:
    client, ws = open_pair()
    ws.receive_data(client.send(TextMessage("last words")))
    ws.receive_data(b"")
    assert drain(ws) == [Message("last words"), ConnectionLost()]


def test_eof_after_our_close() -> None:
    _, ws = open_pair()
    ws.close()
    assert feed(ws, b"") == [ConnectionLost()]
    assert ws.closed_by is Closer.LOCAL
    assert ws.state is WebSocketState.CLOSED


# --- protocol violations ------------------------------------------------------------------------


def assert_failed(
    client: WSConnection, ws: WebSocketConnection, events: list[Event], code: int
) -> None:
    """The connection failed with ``code``: reported, close frame written, rest ignored."""
    assert len(events) == 1
    assert isinstance(events[0], ProtocolViolation)
    assert events[0].code == code
    assert ws.state is WebSocketState.CLOSED
    assert ws.closed_by is Closer.LOCAL
    seen = client_sees(client, ws.pending_output())
    assert seen == [CloseConnection(code, events[0].reason)]
    assert feed(ws, raw_frame(TEXT, b"ignored") + b"\xff" * 100) == []
    with pytest.raises(ClientDisconnected):
        ws.send_message("x")


@pytest.mark.parametrize(
    "data",
    [
        raw_frame(TEXT, b"unmasked", mask=None),
        raw_frame(TEXT, b"rsv2", rsv=2),
        raw_frame(TEXT, b"rsv3", rsv=1),
        raw_frame(TEXT, b"rsv1 without deflate", rsv=4),
        raw_frame(0x3, b"reserved opcode"),
        raw_frame(0xB, b"reserved control opcode"),
        raw_frame(PING, b"fragmented control", fin=False),
        raw_frame(PING, b"x" * 126),
        raw_frame(CONTINUATION, b"nothing to continue"),
        raw_frame(TEXT, b"a", fin=False) + raw_frame(TEXT, b"b"),
        raw_frame(CLOSE, b"\x03"),
        raw_frame(CLOSE, (999).to_bytes(2, "big")),
        raw_frame(CLOSE, (1005).to_bytes(2, "big")),
        raw_frame(CLOSE, (1016).to_bytes(2, "big")),
        raw_frame(CLOSE, (5000).to_bytes(2, "big")),
        bytes([0x81, 0x80 | 126, 0, 5]) + MASK + b"short",  # length not minimally encoded
    ],
)
def test_framing_errors_close_with_1002(data: bytes) -> None:
    client, ws = open_pair()
    assert_failed(client, ws, feed(ws, data), 1002)


def test_rsv1_on_continuation_or_control_frames_with_deflate() -> None:
    for data in [raw_frame(PING, rsv=4), raw_frame(TEXT, b"a", fin=False) + raw_frame(0, rsv=4)]:
        client, ws = open_pair(extensions=[PerMessageDeflate()])
        assert_failed(client, ws, feed(ws, data), 1002)


@pytest.mark.parametrize(
    "data",
    [
        raw_frame(TEXT, b"\xff"),
        raw_frame(TEXT, b"ok \xed\xa0\x80 surrogate"),
        raw_frame(TEXT, b"\xce", fin=False) + raw_frame(CONTINUATION, b"", fin=True),
        raw_frame(CLOSE, b"\x03\xe8\xff"),
    ],
)
def test_invalid_utf8_closes_with_1007(data: bytes) -> None:
    client, ws = open_pair()
    assert_failed(client, ws, feed(ws, data), 1007)


def test_invalid_utf8_fails_fast() -> None:
    client, ws = open_pair()
    # The message is not finished, but it can never become valid: fail now.
    assert_failed(client, ws, feed(ws, raw_frame(TEXT, b"valid \xc0\xaf", fin=False)), 1007)


def test_corrupt_compressed_data_closes_with_1007() -> None:
    client, ws = open_pair(extensions=[PerMessageDeflate()])
    assert_failed(client, ws, feed(ws, raw_frame(TEXT, b"\xff\xff\xff\xff", rsv=4)), 1007)


def test_a_violation_after_our_close_sends_nothing_more() -> None:
    client, ws = open_pair()
    client_sees(client, ws.close())
    events = feed(ws, raw_frame(TEXT, b"\xff"))
    assert [type(event) for event in events] == [ProtocolViolation]
    assert ws.state is WebSocketState.CLOSED
    assert ws.pending_output() == b""


# --- size limits --------------------------------------------------------------------------------


@pytest.mark.parametrize("deflate", [False, True])
def test_message_size_limit(deflate: bool) -> None:
    extensions = [PerMessageDeflate()] if deflate else []
    client, ws = open_pair(extensions=extensions, max_size=1000)
    assert feed(ws, client.send(BytesMessage(b"x" * 1000))) == [Message(b"x" * 1000)]
    assert feed(ws, client.send(TextMessage("\u20ac" * 333))) == [Message("\u20ac" * 333)]
    # 999 bytes, then 2 more in a second fragment: the total counts.
    events = feed(ws, client.send(TextMessage("\u20ac" * 333, message_finished=False)))
    events += feed(ws, client.send(TextMessage("xx")))
    assert_failed(client, ws, events, 1009)


def test_an_announced_oversized_frame_fails_before_its_payload_arrives() -> None:
    client, ws = open_pair(max_size=1000)
    header_and_a_little = raw_frame(BINARY, b"x" * 100, length=10_000_000)
    assert_failed(client, ws, feed(ws, header_and_a_little), 1009)


def measure_peak(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_compression_bomb_is_never_inflated() -> None:
    limit = 64 * 1024
    client, ws = open_pair(extensions=[PerMessageDeflate()], max_size=limit)
    bomb = client.send(BytesMessage(b"\x00" * 8_000_000))
    assert len(bomb) < 20_000
    events: list[Event] = []
    peak = measure_peak(lambda: events.extend(feed(ws, bomb)))
    assert peak < 2 * limit + 100_000  # not the 8 MB the bomb expands to
    assert_failed(client, ws, events, 1009)


def test_bytes_after_a_failure_are_dropped_not_buffered() -> None:
    client, ws = open_pair(max_size=10)
    assert_failed(client, ws, feed(ws, raw_frame(BINARY, b"x" * 11)), 1009)
    flood = b"\x00" * 1_000_000
    peak = measure_peak(lambda: ws.receive_data(flood))
    assert peak < 10_000
    assert ws.next_event() is NEED_DATA


# --- any split of the bytes gives the same events ------------------------------------------------

CLIENT_ACTIONS = st.one_of(
    st.tuples(st.just("text"), st.text(max_size=40)),
    st.tuples(st.just("bytes"), st.binary(max_size=40)),
    st.tuples(st.just("ping"), st.binary(max_size=20)),
    st.tuples(st.just("pong"), st.binary(max_size=20)),
    st.tuples(st.just("fragments"), st.lists(st.text(max_size=10), min_size=2, max_size=4)),
)


def client_bytes(
    client: WSConnection, actions: list[tuple[str, Any]], close: bool
) -> tuple[bytes, list[Event]]:
    """What the client writes for ``actions``, and the events the server should report."""
    data = b""
    expected: list[Event] = []
    for kind, value in actions:
        if kind == "text":
            data += client.send(TextMessage(value))
            expected.append(Message(value))
        elif kind == "bytes":
            data += client.send(BytesMessage(value))
            expected.append(Message(value))
        elif kind == "ping":
            data += client.send(Ping(value))
            expected.append(PingReceived(value))
        elif kind == "pong":
            data += client.send(Pong(value))
            expected.append(PongReceived(value))
        else:
            for i, part in enumerate(value):
                data += client.send(TextMessage(part, message_finished=i == len(value) - 1))
            expected.append(Message("".join(value)))
    if close:
        data += client.send(CloseConnection(1000, "bye"))
        expected.append(CloseReceived(1000, "bye"))
    return data, expected


@given(
    actions=st.lists(CLIENT_ACTIONS, max_size=8),
    deflate=st.booleans(),
    close=st.booleans(),
    cuts=st.lists(st.floats(0, 1), max_size=12),
)
def test_any_split_of_the_bytes_gives_the_same_events(
    actions: list[tuple[str, Any]], deflate: bool, close: bool, cuts: list[float]
) -> None:
    client, handshake, ws = start(extensions=[PerMessageDeflate()] if deflate else [])
    client_sees(client, ws.accept())
    data, expected = client_bytes(client, actions, close)
    if data:  # b"" would mean EOF; the split below skips empty pieces too
        ws.receive_data(data)
    assert drain(ws) == expected
    again = WebSocketConnection(handshake)
    again.accept()
    positions = sorted({0, len(data), *(int(cut * len(data)) for cut in cuts)})
    events: list[Event] = []
    for begin, end in itertools.pairwise(positions):
        if begin < end:
            events += feed(again, data[begin:end])
    assert events == expected
    assert again.pending_output() == ws.pending_output()


# --- every action in every state either moves to a state or raises --------------------------------


def _client_close(ws: WebSocketConnection) -> None:
    feed(ws, raw_frame(CLOSE, b"\x03\xe8"))


ACTIONS: dict[str, Callable[[WebSocketConnection], object]] = {
    "accept": lambda ws: ws.accept(),
    "accept unoffered": lambda ws: ws.accept("nope"),
    "reject": lambda ws: ws.reject(),
    "deny start": lambda ws: ws.deny_start(404, [(b"content-length", b"1")]),
    "deny body more": lambda ws: ws.deny_body(b"", more_body=True),
    "deny body end": lambda ws: ws.deny_body(b"x"),
    "send text": lambda ws: ws.send_message("x"),
    "send bytes": lambda ws: ws.send_message(b"x"),
    "ping": lambda ws: ws.send_ping(b"p"),
    "close": lambda ws: ws.close(1000, "bye"),
    "close reserved": lambda ws: ws.close(1006),
    "client message": lambda ws: feed(ws, raw_frame(TEXT, b"hi")),
    "client ping": lambda ws: feed(ws, raw_frame(PING, b"hi")),
    "client close": _client_close,
    "client garbage": lambda ws: feed(ws, raw_frame(TEXT, b"x", mask=None)),
    "client eof": lambda ws: feed(ws, b""),
    "output": lambda ws: ws.pending_output(),
}


@given(st.lists(st.sampled_from(sorted(ACTIONS)), max_size=12))
def test_every_action_moves_to_a_state_or_raises(names: list[str]) -> None:
    _, _, ws = start()
    for name in names:
        before = ws.state
        try:
            ACTIONS[name](ws)
        except (ASGIProtocolError, ClientDisconnected):
            assert ws.state is before
        else:
            assert isinstance(ws.state, WebSocketState)
        if ws.state in (WebSocketState.CLOSED, WebSocketState.REJECTED):
            assert ws.next_event() is NEED_DATA  # nothing more will ever be reported
