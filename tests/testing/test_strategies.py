"""The strategies draw what they claim, checked with real h11 and wsproto parsers.

Valid requests must parse into exactly their parts under any split; invalid ones
must be refused by h11 where h11 is strict, and must carry their defect where h11
is lenient. Valid WebSocket traffic must decode into its messages; invalid
traffic must make wsproto close with the expected code.
"""

from __future__ import annotations

import doctest
import importlib
import re
from collections.abc import Callable, Iterator

import h11
import pytest
import trio
import trio.testing
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Event, Ping, TextMessage

from trio_asgi import Config
from trio_asgi._types import Message
from trio_asgi.testing.strategies import (
    INVALID_REQUEST_KINDS,
    INVALID_WS_KINDS,
    Frame,
    Opcode,
    Raise,
    RawInvalidRequest,
    RawRequest,
    ScriptedApp,
    ScriptedAppError,
    WsTraffic,
    asgi_http_apps,
    http_requests,
    invalid_requests,
    invalid_ws_frames,
    pipelines,
    splits,
    ws_client_frames,
)

# Per-kind tests draw fewer examples each: there are many kinds.
PER_KIND = settings(max_examples=max(10, settings().max_examples // 5))

# --- valid requests ----------------------------------------------------------------------------


def expected_headers(request: RawRequest) -> list[tuple[bytes, bytes]]:
    # h11 lower-cases names, and the value of Transfer-Encoding.
    return [
        (name.lower(), value.lower() if name.lower() == b"transfer-encoding" else value)
        for name, value in request.headers
    ]


def read_request(conn: h11.Connection, request: RawRequest) -> None:
    """Read one request from ``conn`` and check it is exactly ``request``."""
    event = conn.next_event()
    assert isinstance(event, h11.Request)
    assert event.method == request.method.encode()
    assert event.target == request.target.encode()
    assert event.http_version == b"1.1"
    assert list(event.headers) == expected_headers(request)
    body = b""
    while isinstance(event := conn.next_event(), h11.Data):
        body += event.data
    assert isinstance(event, h11.EndOfMessage)
    assert body == request.body
    assert list(event.headers) == [(name.lower(), value) for name, value in request.trailers]


@given(http_requests(), st.data())
def test_valid_requests_parse_exactly_under_any_split(
    request: RawRequest, data: st.DataObject
) -> None:
    conn = h11.Connection(h11.SERVER)
    for chunk in data.draw(splits(request.data, max_chunks=256)):
        conn.receive_data(chunk)
    read_request(conn, request)
    assert conn.next_event() is h11.NEED_DATA
    assert conn.trailing_data == (b"", False)  # nothing left over


@given(http_requests())
def test_request_parts_are_consistent(request: RawRequest) -> None:
    assert request.data == request.head + request.framed_body
    assert request.head.endswith(b"\r\n\r\n")
    assert [n.lower() for n, _ in request.headers].count(b"host") == 1
    if request.target_form == "origin":
        query = b"?" + request.query_string if "?" in request.target else b""
        assert request.target.encode() == request.raw_path + query
    assert request.raw_path.startswith(b"/") or request.raw_path == b"*"
    framing_fields = {n.lower() for n, _ in request.headers} & {
        b"content-length",
        b"transfer-encoding",
    }
    assert (
        framing_fields
        == {
            "none": set(),
            "content-length": {b"content-length"},
            "chunked": {b"transfer-encoding"},
        }[request.framing]
    )


@given(pipelines(max_requests=4), st.data())
def test_pipelines_parse_in_order(requests: list[RawRequest], data: st.DataObject) -> None:
    conn = h11.Connection(h11.SERVER)
    for chunk in data.draw(splits(b"".join(r.data for r in requests), max_chunks=256)):
        conn.receive_data(chunk)
    for request in requests:
        read_request(conn, request)
        conn.send(h11.Response(status_code=204, headers=[]))
        conn.send(h11.EndOfMessage())
        conn.start_next_cycle()
    assert conn.next_event() is h11.NEED_DATA


@given(st.binary(max_size=200), st.data())
def test_splits_rejoin_into_non_empty_chunks(payload: bytes, data: st.DataObject) -> None:
    chunks = data.draw(splits(payload))
    assert b"".join(chunks) == payload
    assert all(chunks)


def test_splits_reach_one_byte_at_a_time() -> None:
    assert find(splits(b"GET / HTTP/1.1"), lambda chunks: len(chunks) == 14)
    assert find(splits(b""), lambda chunks: True) == []


# --- invalid requests --------------------------------------------------------------------------

LIMITS = Config()


def _head(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    return data if end < 0 else data[: end + 4]


def _request_line(data: bytes) -> list[bytes]:
    return re.split(rb"\r?\n", data, maxsplit=1)[0].split(b" ")


def _fields(data: bytes) -> list[tuple[bytes, bytes]]:
    lines = _head(data).split(b"\r\n")[1:-2]
    return [(n.strip().lower(), v.strip()) for n, _, v in (line.partition(b":") for line in lines)]


def _after_head(data: bytes) -> bytes:
    return data[len(_head(data)) :]


_ORIGIN_FORM = re.compile(rb"/[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*")
_HOST = re.compile(rb"([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]*)?")
_BARE_LF = re.compile(rb"(?<!\r)\n")


def _before_body(request: RawInvalidRequest) -> bytes:
    return request.data[: len(request.data) - len(request.base.framed_body)]


#: For the kinds h11 accepts (or only sometimes refuses): the defect must be in the bytes.
LENIENT: dict[str, Callable[[bytes], bool]] = {
    "cl-and-te": lambda d: {n for n, _ in _fields(d)} >= {b"content-length", b"transfer-encoding"},
    "duplicate-content-length": lambda d: (
        len([v for n, v in _fields(d) if n == b"content-length" for v in v.split(b",")]) >= 2
    ),
    "chunk-size-too-long": lambda d: bool(
        re.search(rb"(?:^|\r\n)[0-9a-fA-F]{17,}\r\n", _after_head(d))
    ),
    "chunk-size-whitespace": lambda d: bool(
        re.search(rb"(?:^|\r\n)([0-9a-fA-F]+[ \t]+| +[0-9a-fA-F]+)\r\n", _after_head(d))
    ),
    "obs-fold": lambda d: bool(re.search(rb"\r\n[ \t]", _head(d))),
    "lf-in-header-value": lambda d: bool(_BARE_LF.search(_head(d))),
    "oversized-head": lambda d: len(_head(d)) > LIMITS.max_header_size + 4,
    "too-many-headers": lambda d: len(_fields(d)) > LIMITS.max_header_count,
    "target-too-long": lambda d: len(_request_line(d)[1]) > LIMITS.max_target_length,
    "unsupported-version": lambda d: _request_line(d)[2] not in (b"HTTP/1.0", b"HTTP/1.1"),
    "connect": lambda d: _request_line(d)[0] == b"CONNECT",
    "authority-form": lambda d: re.fullmatch(_HOST, _request_line(d)[1]) is not None,
    "asterisk-form": lambda d: _request_line(d)[1] == b"*" and _request_line(d)[0] != b"OPTIONS",
    "invalid-target": lambda d: _ORIGIN_FORM.fullmatch(_request_line(d)[1]) is None,
    "invalid-host": lambda d: not _HOST.fullmatch(dict(_fields(d))[b"host"]),
    "body-too-large": lambda d: int(dict(_fields(d))[b"content-length"]) > 1000,
}
#: The kinds h11 always refuses.
H11_REFUSES = set(INVALID_REQUEST_KINDS) - set(LENIENT) - {"bare-lf"}


def h11_accepts(data: bytes) -> bool:
    """Whether h11 reads a complete first request from ``data`` followed by EOF."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    conn.receive_data(b"")
    try:
        while not isinstance(conn.next_event(), h11.EndOfMessage):
            pass
    except h11.RemoteProtocolError:
        return False
    return True


def test_every_kind_is_checked() -> None:
    assert set(LENIENT) <= set(INVALID_REQUEST_KINDS)
    assert {"truncated", "chunk-missing-crlf", "conflicting-content-length"} <= H11_REFUSES


@pytest.mark.parametrize("kind", sorted(INVALID_REQUEST_KINDS))
@PER_KIND
@given(data=st.data())
def test_invalid_requests_carry_their_defect(kind: str, data: st.DataObject) -> None:
    request: RawInvalidRequest = data.draw(invalid_requests(kinds=[kind], max_body_size=1000))
    assert request.kind == kind
    assert request.expected_status == INVALID_REQUEST_KINDS[kind]
    assert request.data != request.base.data
    if kind in H11_REFUSES:
        assert not h11_accepts(request.data)
    elif kind == "bare-lf":
        assert _BARE_LF.search(_before_body(request))
    else:
        assert LENIENT[kind](request.data), request.data


def test_statuses_are_the_strict_ones() -> None:
    assert set(INVALID_REQUEST_KINDS.values()) == {400, 413, 414, 431, 501, 505, None}
    assert INVALID_REQUEST_KINDS["truncated"] is None
    assert INVALID_REQUEST_KINDS["unsupported-version"] == 505


def test_unknown_kinds_and_missing_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        invalid_requests(kinds=["nope"])
    with pytest.raises(ValueError, match="max_body_size"):
        invalid_requests(kinds=["body-too-large"])
    with pytest.raises(ValueError, match="unknown kind"):
        invalid_ws_frames(kinds=["nope"])


# --- WebSocket ---------------------------------------------------------------------------------


def ws_events(data: bytes, chunks: list[bytes] | None = None) -> list[Event]:
    conn = Connection(ConnectionType.SERVER)
    events: list[Event] = []
    for chunk in chunks or [data]:
        conn.receive_data(chunk)
        events += conn.events()
    return events


def messages_of(events: list[Event]) -> list[str | bytes]:
    """The complete messages among ``events``, fragments joined."""
    messages: list[str | bytes] = []
    text: list[str] = []
    binary: list[bytes] = []
    for event in events:
        if isinstance(event, TextMessage):
            text.append(event.data)
            if event.message_finished:
                messages.append("".join(text))
                text = []
        elif isinstance(event, BytesMessage):
            binary.append(bytes(event.data))
            if event.message_finished:
                messages.append(b"".join(binary))
                binary = []
    return messages


def test_frame_encoder_matches_rfc_6455_examples() -> None:
    # RFC 6455 section 5.7.
    assert Frame(Opcode.TEXT, b"Hello", mask=None).data == bytes.fromhex("810548656c6c6f")
    masked = Frame(Opcode.TEXT, b"Hello", mask=bytes.fromhex("37fa213d"))
    assert masked.data == bytes.fromhex("818537fa213d7f9f4d5158")
    assert Frame(Opcode.BINARY, b"\0" * 256, mask=None).data[:4] == bytes.fromhex("827e0100")
    assert Frame(Opcode.BINARY, b"\0" * 65536, mask=None).data[:10] == bytes.fromhex(
        "827f0000000000010000"
    )
    first = Frame(Opcode.TEXT, b"Hel", fin=False, mask=None)
    assert first.data == bytes.fromhex("010348656c")


@given(ws_client_frames(max_message_size=70_000), st.data())
def test_valid_ws_traffic_decodes_into_its_messages(
    traffic: WsTraffic, data: st.DataObject
) -> None:
    assert all(frame.data[1] & 0x80 for frame in traffic.frames)  # every frame is masked
    events = ws_events(traffic.data, data.draw(splits(traffic.data, max_chunks=50)))
    assert messages_of(events) == list(traffic.messages)
    assert [e.payload for e in events if isinstance(e, Ping)] == list(traffic.pings)
    closes = [(int(e.code), e.reason) for e in events if isinstance(e, CloseConnection)]
    assert closes == ([] if traffic.close is None else [traffic.close])


def test_valid_ws_traffic_uses_every_length_encoding() -> None:
    # 126: a 16-bit length follows; 127: a 64-bit one (payloads over 65535 bytes).
    for length_byte in (126, 127):

        def uses_it(traffic: WsTraffic, length_byte: int = length_byte) -> bool:
            return any(frame.data[1] & 0x7F == length_byte for frame in traffic.frames)

        found = find(
            ws_client_frames(max_messages=1),
            uses_it,
            settings=settings(max_examples=5000, database=None, phases=[Phase.generate]),
        )
        assert found.messages


@pytest.mark.parametrize("kind", sorted(INVALID_WS_KINDS))
@PER_KIND
@given(data=st.data())
def test_invalid_ws_traffic_closes_with_its_code(kind: str, data: st.DataObject) -> None:
    traffic = data.draw(invalid_ws_frames(kinds=[kind], max_message_size=300))
    assert traffic.expected_close_code == INVALID_WS_KINDS[kind]
    events = ws_events(traffic.data)
    closes = [int(e.code) for e in events if isinstance(e, CloseConnection)]
    assert messages_of(events)[: len(traffic.messages_before)] == list(traffic.messages_before)
    if kind == "oversized-message":
        # wsproto has no size limit: check the message (or its announced length) is too big.
        assert closes == []
        last = traffic.frames[-1]
        announced = last.declared_length or sum(len(f.payload) for f in traffic.frames[-2:])
        assert announced > 300
    else:
        assert closes == [traffic.expected_close_code]


# --- ASGI apps ---------------------------------------------------------------------------------


async def drive(app: ScriptedApp) -> list[Message]:
    """Call ``app`` once the way a server would (permissively), returning what it sent.

    ``receive()`` gives a one-message body, then blocks until the response is
    complete, then reports ``http.disconnect``, as the ASGI spec asks.
    """
    sent: list[Message] = []
    done = trio.Event()
    requested = False

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"body", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        await trio.lowlevel.checkpoint()
        sent.append(message)
        if (
            isinstance(message, dict)
            and message.get("type") == "http.response.body"
            and not message.get("more_body", False)
        ):
            done.set()

    try:
        await app({"type": "http", "method": "GET", "path": "/"}, receive, send)
    except ScriptedAppError:
        pass
    return sent


@given(asgi_http_apps())
def test_scripted_apps_do_what_their_plan_says(app: ScriptedApp) -> None:
    async def main() -> None:
        with trio.move_on_after(10_000) as scope:
            sent = await drive(app)
        if not app.waits_for_disconnect:
            assert not scope.cancelled_caught, "the app blocked although its plan says it cannot"
        if scope.cancelled_caught:
            return
        [call] = app.calls
        assert call.outcome in ("returned", "raised")
        assert call.sent == sent
        expected = app.expected_response
        if expected is not None:
            assert sent[0]["status"] == expected.status
            body = b""
            for message in sent[1:]:
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
            assert body == expected.body

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_some_apps_behave_and_some_do_not() -> None:
    quick = settings(max_examples=2000, database=None, phases=[Phase.generate])
    assert find(asgi_http_apps(), lambda app: app.expected_response is not None, settings=quick)
    assert find(asgi_http_apps(), lambda app: app.expected_response is None, settings=quick)
    assert find(
        asgi_http_apps(), lambda app: any(isinstance(s, Raise) for s in app.script), settings=quick
    )


async def test_scripted_apps_answer_lifespan() -> None:
    app = ScriptedApp((Raise(),))
    messages: Iterator[Message] = iter(
        [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    )
    sent: list[Message] = []

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
    assert app.calls == []


# --- the examples in the docstrings ------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [
        "trio_asgi.testing._streams",
        "trio_asgi.testing._http_requests",
        "trio_asgi.testing._http_invalid",
        "trio_asgi.testing._ws_strategies",
        "trio_asgi.testing._asgi_apps",
        "trio_asgi.testing.strategies",
    ],
)
def test_docstring_examples_run(module: str) -> None:
    # The examples are usage, not tests of their own: a few examples each is enough.
    settings.register_profile("docstrings", settings(), max_examples=5)
    previous = settings()
    settings.load_profile("docstrings")
    try:
        results = doctest.testmod(importlib.import_module(module), raise_on_error=True)
    finally:
        settings.register_profile("restored", previous)
        settings.load_profile("restored")
    assert results.attempted > 0


def test_every_public_strategy_is_documented_with_an_example() -> None:
    from trio_asgi.testing import strategies

    names = [name for name in vars(strategies) if not name.startswith("_")]
    functions = [
        "asgi_http_apps",
        "http_requests",
        "invalid_requests",
        "invalid_ws_frames",
        "pipelines",
        "splits",
        "ws_client_frames",
    ]
    assert set(functions) <= set(names)
    for name in functions:
        doc = getattr(strategies, name).__doc__
        assert doc
        assert "Example:" in doc, name
