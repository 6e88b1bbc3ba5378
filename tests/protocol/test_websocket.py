"""The sans-IO WebSocket connection, driven by a real wsproto client and by raw frames.

``open_pair()`` runs a real handshake: a wsproto client's request, parsed by h11 as the
server does, validated, accepted; the client checks our 101. Frames a well-behaved
client would never send are written by ``raw_frame()``.
"""

from __future__ import annotations

import pytest
from ws_protocol_helpers import client_sees, drain, feed, open_pair, parse_http, raw_frame, start
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

from trio_asgi import ASGIProtocolError, ClientDisconnected
from trio_asgi._protocol._response import DefaultHeaders
from trio_asgi._protocol._ws_events import (
    NEED_DATA,
    Closer,
    CloseReceived,
    ConnectionLost,
    Event,
    Message,
    PingReceived,
    PongReceived,
    WebSocketState,
)

TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0

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
