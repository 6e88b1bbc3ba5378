"""The sans-IO WebSocket connection: protocol violations, size limits (bounded memory),
any split of the bytes, and every action in every state, against a real wsproto client."""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ws_protocol_helpers import MASK, client_sees, drain, feed, open_pair, raw_frame, start
from wsproto import WSConnection
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

from trio_asgi import ASGIProtocolError, ClientDisconnected
from trio_asgi._protocol._websocket import WebSocketConnection
from trio_asgi._protocol._ws_events import (
    NEED_DATA,
    Closer,
    CloseReceived,
    Event,
    Message,
    PingReceived,
    PongReceived,
    ProtocolViolation,
    WebSocketState,
)

TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0

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
