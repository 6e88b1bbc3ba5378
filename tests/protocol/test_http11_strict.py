"""HTTP11Connection where we are stricter than h11 (every malformed request gets its
status and the connection ends), and, with hypothesis, that any split of the input gives
the same events and that the receive buffer stays bounded."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import h11
import pytest
from http11_helpers import only_head, respond
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_asgi._protocol._http11 import (
    NEED_DATA,
    PAUSED,
    BadRequest,
    BodyData,
    ClientEOF,
    EndOfBody,
    Limits,
    RequestHead,
)

# --- stricter than h11: every malformed request gets its status and the connection ends -----


def req(line: bytes, *headers: bytes, body: bytes = b"") -> bytes:
    return line + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


GET, POST, H = b"GET / HTTP/1.1", b"POST / HTTP/1.1", b"Host: h"
TE, CL = b"Transfer-Encoding: chunked", b"Content-Length: "
CHUNKED = req(POST, H, TE)
MANY = [b"X-%d: v" % i for i in range(100)]
LONG_LINES = [b"X-%d: %s" % (i, b"v" * 200) for i in range(90)]

#: (id, bytes, status): each gives exactly this status, in one read or byte by byte.
BAD_REQUESTS: list[tuple[str, bytes, int]] = [
    # RFC 9112 section 6.1: Content-Length with Transfer-Encoding is 400 and close.
    ("cl-and-te", req(POST, H, CL + b"5", TE, body=b"0\r\n\r\n"), 400),
    ("te-and-cl", req(POST, H, TE, CL + b"0"), 400),
    ("cl-repeated-equal", req(POST, H, CL + b"1", b"content-length: 1", body=b"x"), 400),
    ("cl-repeated-differing", req(POST, H, CL + b"1", CL + b"2", body=b"xy"), 400),
    ("cl-comma-list", req(POST, H, CL + b"1, 1", body=b"x"), 400),
    ("cl-comma-list-differing", req(POST, H, CL + b"1,2"), 400),
    ("cl-not-a-number", req(POST, H, CL + b"0x5"), 400),
    ("cl-negative", req(POST, H, CL + b"-1"), 400),
    # RFC 9112 section 6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
    ("te-on-http10", req(b"POST / HTTP/1.0", TE, body=b"0\r\n\r\n"), 400),
    ("te-not-chunked", req(POST, H, b"Transfer-Encoding: gzip"), 501),
    # limits
    ("head-too-large", req(GET, H, b"X-Big: " + b"a" * 16400), 431),
    ("head-too-large-many-lines", req(GET, H, *LONG_LINES), 431),
    ("too-many-headers", req(GET, H, *MANY), 431),
    ("target-too-long", req(b"GET /" + b"a" * 8192 + b" HTTP/1.1", H), 414),
    ("request-line-too-long", req(b"GET /" + b"a" * 9000 + b" HTTP/1.1", H), 414),
    ("request-line-too-long-incomplete", b"GET /" + b"a" * 9000, 414),
    (
        "request-line-too-long-head-incomplete",
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nH: h\r\n",
        414,
    ),
    # methods we do not serve
    ("connect", req(b"CONNECT example.com:443 HTTP/1.1", b"Host: example.com:443"), 501),
    ("pri", req(b"PRI / HTTP/1.1", H), 501),
    ("h2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    # versions
    ("http-2.0", req(b"GET / HTTP/2.0", H), 505),
    ("http-1.2", req(b"GET / HTTP/1.2", H), 505),
    ("http-0.9", b"GET /\r\n\r\n", 400),
    ("http-1", req(b"GET / HTTP/1", H), 400),
    ("http-lower-case", req(b"GET / http/1.1", H), 400),
    ("http-10.0", req(b"GET / HTTP/10.0", H), 400),
    # Host
    ("missing-host", req(GET, b"Accept: */*"), 400),
    ("multiple-host", req(GET, b"Host: a", b"Host: b"), 400),
    # request targets (more in test_target.py)
    ("asterisk-with-get", req(b"GET * HTTP/1.1", H), 400),
    ("authority-form-with-get", req(b"GET example.com:80 HTTP/1.1", H), 400),
    ("fragment", req(b"GET /a#b HTTP/1.1", H), 400),
    ("fragment-in-absolute-form", req(b"GET http://h/p?q#f HTTP/1.1", H), 400),
    ("fragment-after-absolute-authority", req(b"GET http://h#f HTTP/1.1", H), 400),
    # line endings and syntax of the head
    ("bare-lf-head", b"GET / HTTP/1.1\nHost: h\n\n", 400),
    ("bare-lf-after-request-line", b"GET / HTTP/1.1\nHost: h\r\n\r\n", 400),
    ("bare-lf-in-header-block", b"GET / HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n", 400),
    ("bare-lf-ending-head", b"GET / HTTP/1.1\r\nHost: h\r\n\n", 400),
    ("bare-cr-in-header", b"GET / HTTP/1.1\r\nHost: h\rX-A: 1\r\n\r\n", 400),
    ("obs-fold-space", req(GET, H, b"X-A: 1", b" continued"), 400),
    ("obs-fold-tab", req(GET, H, b"X-A: 1", b"\tcontinued"), 400),
    ("space-before-first-header", req(GET, b" Host: h"), 400),
    ("whitespace-before-colon", req(GET, b"Host : h"), 400),
    ("tab-before-colon", req(GET, b"Host\t: h"), 400),
    ("space-in-name", req(GET, H, b"X A: 1"), 400),
    ("empty-name", req(GET, H, b": 1"), 400),
    ("no-colon", req(GET, H, b"X-A"), 400),
    ("nul-in-value", req(GET, H, b"X-A: a\x00b"), 400),
    ("double-space", req(b"GET  / HTTP/1.1", H), 400),
    ("trailing-space", req(b"GET / HTTP/1.1 ", H), 400),
    ("no-target", req(b"GET HTTP/1.1", H), 400),
    ("tls-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    ("space-line", b" \r\n\r\n", 400),
    # chunked framing (more in test_chunked.py)
    ("chunk-size-trailing-space", CHUNKED + b"5 \r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-ext-nul", CHUNKED + b"5;a=\x00\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-ext-control", CHUNKED + b"5;a\x01b\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-line-bare-lf", CHUNKED + b"5\nhello\r\n0\r\n\r\n", 400),
    ("chunk-data-bare-lf", CHUNKED + b"5\r\nhello\n0\r\n\r\n", 400),
    ("trailer-bare-lf", CHUNKED + b"0\r\nX-T: 1\n\r\n", 400),
    ("trailers-end-bare-lf", CHUNKED + b"0\r\nX-T: 1\r\n\n", 400),
    ("chunk-size-17-digits", CHUNKED + b"00000000000000005\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-20-digits", CHUNKED + b"FFFFFFFFFFFFFFFFFFFF\r\n", 400),
]


def first_bad(events: list[Any]) -> Any:
    bad = [event for event in events if type(event).__name__ == "BadRequest"]
    assert bad, events
    assert events[-1] is bad[0]
    return bad[0]


def check_unusable_then_error_reply(hp: Any, conn: Any, status: int, data: bytes) -> None:
    """No more events but ClientEOF; the error reply is a proper, closing, detail-free response."""
    assert hp.pull(conn) == [ClientEOF(clean=False)]
    assert hp.feed(conn, hp.Client().request()) == [ClientEOF(clean=False)]
    assert not conn.request_complete
    reply_bytes = conn.error_response(status)
    parser = hp.Client()
    parser.request()
    reply = parser.response(reply_bytes)
    assert reply.status == status
    assert reply.reason
    assert reply.values(b"content-length") == [str(len(reply.body)).encode()]
    assert reply.values(b"connection") == [b"close"]
    assert reply.body == reply.reason + b"\n"
    # nothing of the request comes back (no reflected input)
    assert reply.body not in data


@pytest.mark.parametrize(
    ("data", "status"), [case[1:] for case in BAD_REQUESTS], ids=[case[0] for case in BAD_REQUESTS]
)
def test_bad_request_in_one_read(hp: Any, data: bytes, status: int) -> None:
    conn = hp.conn()
    events = hp.feed(conn, data)
    bad = first_bad(events)
    assert bad.status == status
    assert bad.detail
    check_unusable_then_error_reply(hp, conn, status, data)


@pytest.mark.parametrize(
    ("data", "status"), [case[1:] for case in BAD_REQUESTS], ids=[case[0] for case in BAD_REQUESTS]
)
def test_bad_request_byte_by_byte(hp: Any, data: bytes, status: int) -> None:
    conn = hp.conn()
    events: list[Any] = []
    for i in range(len(data)):
        events += hp.feed(conn, data[i : i + 1])
        if events[-1] is not NEED_DATA and events[-1] is not PAUSED:
            break
    events = [event for event in events if event is not NEED_DATA]
    assert first_bad(events).status == status
    check_unusable_then_error_reply(hp, conn, status, data)


def test_head_limit_is_exact(hp: Any) -> None:
    limits = Limits(max_header_size=100)
    line = b"GET / HTTP/1.1\r\n"
    # The header section is every byte after the request line's CRLF, blank line included.
    fits = req(line[:-2], b"Host: h", b"X: " + b"a" * (100 - len(b"Host: h\r\nX: \r\n\r\n")))
    assert len(fits) - len(line) == 100
    assert type(hp.feed(hp.conn(limits), fits)[0]) is RequestHead
    too_big = fits.replace(b"X: ", b"X: a")
    assert hp.feed(hp.conn(limits), too_big)[-1].status == 431
    # A head that never ends is cut as soon as its header section passes the limit.
    endless = line + b"X: " + b"a" * 200
    conn = hp.conn(limits)
    for i in range(len(line) + 100):
        assert hp.feed(conn, endless[i : i + 1]) == [NEED_DATA]
    assert hp.feed(conn, endless[len(line) + 100 : len(line) + 101])[-1].status == 431


def test_header_count_limit_is_exact(hp: Any) -> None:
    limits = Limits(max_header_count=3)
    fits = req(b"GET / HTTP/1.1", b"Host: h", b"A: 1", b"B: 2")
    assert type(hp.feed(hp.conn(limits), fits)[0]) is RequestHead
    too_many = req(b"GET / HTTP/1.1", b"Host: h", b"A: 1", b"B: 2", b"C: 3")
    assert hp.feed(hp.conn(limits), too_many)[-1].status == 431


def test_target_limit_is_exact(hp: Any) -> None:
    limits = Limits(max_target_length=10)
    assert (
        type(hp.feed(hp.conn(limits), req(b"GET /123456789 HTTP/1.1", b"Host: h"))[0])
        is RequestHead
    )
    assert hp.feed(hp.conn(limits), req(b"GET /1234567890 HTTP/1.1", b"Host: h"))[-1].status == 414


def test_sixteen_hex_digits_accepted_as_framing(hp: Any) -> None:
    conn = hp.conn()
    head = req(b"POST / HTTP/1.1", b"Host: h", b"Transfer-Encoding: chunked")
    events = hp.feed(conn, head + b"FFFFFFFFFFFFFFFF\r\nabc")
    assert events[1:] == [BodyData(b"abc"), NEED_DATA]
    conn = hp.conn()
    events = hp.feed(conn, head + b"000000000000000a\r\n0123456789\r\n0\r\n\r\n")
    assert events[1:] == [BodyData(b"0123456789"), EndOfBody(), PAUSED]


def test_http10_without_host_is_fine(hp: Any) -> None:
    head = only_head(hp.feed(hp.conn(), b"GET / HTTP/1.0\r\n\r\n"))
    assert head.headers == []


def test_absolute_form_becomes_path(hp: Any) -> None:
    data = hp.Client().request(b"GET", b"http://example.com:8080/a/b?x=1")
    head = only_head(hp.feed(hp.conn(), data))
    assert (head.raw_path, head.query_string) == (b"/a/b", b"x=1")
    assert head.raw_target == b"http://example.com:8080/a/b?x=1"


def test_asterisk_with_options(hp: Any) -> None:
    head = only_head(hp.feed(hp.conn(), hp.Client().request(b"OPTIONS", b"*")))
    assert (head.raw_path, head.query_string) == (b"*", b"")


def test_error_response_for_http10_request(hp: Any) -> None:
    conn = hp.conn(server_header=True, date_header=True)
    bad = first_bad(hp.feed(conn, b"GET / HTTP/1.0\r\nX : y\r\n\r\n"))
    assert bad.status == 400
    raw = conn.error_response(400)
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    conn = hp.conn()
    hp.feed(conn, b"GET / HTTP/1.0\r\n\r\n")
    assert conn.error_response(503, extra=((b"retry-after", b"1"),)).startswith(b"HTTP/1.0 503 ")


# --- any split of the bytes gives the same events; the buffer stays bounded -------------------

_NAME = st.sampled_from(["a", "b-c", "x_y.z", "!#$%&'*+^`|~", "9"])
_VALUE = st.sampled_from([b"", b"v", b"a b", b"a \t b", b"\x80\xff", b"!~", b'=;,"'])
_PATH = st.text("abZ09-._~%!$&'()*+,;=:@/", max_size=8)
_QUERY = st.none() | st.text("ab09-._~%!$&'()*+,;=:@/?", max_size=8)


@dataclass
class GenRequest:
    data: bytes
    expected: list[tuple[Any, ...]]


@st.composite
def gen_request(draw: st.DrawFn, *, close: bool = False) -> GenRequest:
    """A valid request written by an h11 client, with the events it must give."""
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"HEAD"]))
    path = ("/" + draw(_PATH)).encode()
    query = draw(_QUERY)
    target = path if query is None else path + b"?" + query.encode()
    headers = [(b"Host", b"example.com")]
    headers += [
        (b"X-" + draw(_NAME).encode(), draw(_VALUE)) for _ in range(draw(st.integers(0, 3)))
    ]
    framing = draw(st.sampled_from(["none", "length", "chunked"]))
    parts = draw(st.lists(st.binary(max_size=40), max_size=4)) if framing != "none" else []
    body = b"".join(parts)
    trailers: list[tuple[bytes, bytes]] = []
    if framing == "length":
        headers.append((b"Content-Length", str(len(body)).encode()))
    elif framing == "chunked":
        headers.append((b"Transfer-Encoding", b"chunked"))
        trailers = [
            (b"X-T-" + draw(_NAME).encode(), draw(_VALUE)) for _ in range(draw(st.integers(0, 2)))
        ]
    if close:
        headers.append((b"Connection", b"close"))
    client = h11.Connection(h11.CLIENT)
    data = client.send(h11.Request(method=method, target=target, headers=headers)) or b""
    for part in parts:
        if part:
            data += client.send(h11.Data(data=part)) or b""
    data += client.send(h11.EndOfMessage(headers=trailers)) or b""
    lowered = [(name.lower(), value) for name, value in headers]
    expected: list[tuple[Any, ...]] = [
        ("head", method.decode(), path, (query or "").encode(), lowered)
    ]
    if body:
        expected.append(("body", body))
    if framing == "chunked" or body:
        expected.append(("end",))
    return GenRequest(data, expected)


@st.composite
def gen_pipeline(draw: st.DrawFn) -> GenRequest:
    count = draw(st.integers(1, 3))
    close = draw(st.booleans())
    requests = [draw(gen_request(close=close and i == count - 1)) for i in range(count)]
    expected = [item for request in requests for item in request.expected]
    if not close:
        expected.append(("eof", True))
    return GenRequest(b"".join(r.data for r in requests), expected)


def serve_all(hp: Any, chunks: list[bytes]) -> list[tuple[Any, ...]]:
    """Run a connection over ``chunks`` (then EOF), answering each request once it is read."""
    conn = hp.conn()
    pending = list(chunks)
    seen: list[tuple[Any, ...]] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            conn.receive_data(pending.pop(0) if pending else b"")
        elif event is PAUSED:
            respond(conn, body=b"")
            if not conn.reusable:
                return seen
            conn.start_next_cycle()
        elif type(event) is RequestHead:
            seen.append(("head", event.method, event.raw_path, event.query_string, event.headers))
        elif type(event) is BodyData:
            if seen[-1][0] == "body":
                seen[-1] = ("body", seen[-1][1] + event.data)
            else:
                seen.append(("body", event.data))
        elif type(event) is EndOfBody:
            seen.append(("end",))
        else:
            seen.append(("eof", event.clean) if type(event) is ClientEOF else ("bad", event.status))
            return seen


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


@settings(max_examples=150, deadline=None)
@given(pipeline=gen_pipeline(), cuts=st.lists(st.integers(0, 2000), max_size=20))
def test_any_split_gives_the_same_events(hp: Any, pipeline: GenRequest, cuts: list[int]) -> None:
    assert serve_all(hp, [pipeline.data]) == pipeline.expected
    assert serve_all(hp, split(pipeline.data, cuts)) == pipeline.expected


def test_byte_by_byte_gives_the_same_events(hp: Any) -> None:
    client = hp.Client()
    data = client.request(b"POST", b"/a?b", [(b"X-A", b"1")], body=b"hello")
    client.response(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    client.next_cycle()
    data += client.request(b"GET", b"/c")
    expected = serve_all(hp, [data])
    assert expected[-1] == ("eof", True)
    assert serve_all(hp, [data[i : i + 1] for i in range(len(data))]) == expected


@settings(max_examples=100, deadline=None)
@given(
    case=st.sampled_from(BAD_REQUESTS),
    cuts=st.lists(st.integers(0, 20000), max_size=10),
)
def test_any_split_of_a_bad_request_gives_the_same_status(
    hp: Any, case: tuple[str, bytes, int], cuts: list[int]
) -> None:
    _, data, status = case
    assert serve_all(hp, split(data, cuts))[-1] == ("bad", status)


_PIECES = st.one_of(
    gen_request().map(lambda r: r.data),
    st.binary(max_size=50),
    st.builds(
        lambda n, end: b"GET /" + b"a" * n + end,
        st.integers(0, 70_000),
        st.sampled_from([b"", b" HTTP/1.1\r\n", b" HTTP/1.1\r\nHost: h\r\n"]),
    ),
    st.builds(lambda n: b"X-Long: " + b"v" * n + b"\r\n", st.integers(0, 70_000)),
    st.just(b"\r\n"),
)


@settings(max_examples=100, deadline=None)
@given(
    pieces=st.lists(_PIECES, max_size=6),
    sizes=st.lists(st.integers(512, 70_000), min_size=1, max_size=8),
    fill_while_paused=st.booleans(),
)
def test_buffer_bounded_and_never_stalls(
    hp: Any, pieces: list[bytes], sizes: list[int], fill_while_paused: bool
) -> None:
    """Fed only while it wants data, the buffer stays within the bound, and the
    connection never waits for data it refuses to take (NEED_DATA with wants_data false)."""
    limits = Limits()
    conn = hp.conn(limits)
    stream = b"".join(pieces)
    sent = 0
    reads = itertools.cycle(sizes)

    def read() -> None:
        nonlocal sent
        size = min(next(reads), limits.buffer_limit - conn.buffered)
        data = stream[sent : sent + size]
        sent += len(data)
        conn.receive_data(data)
        assert conn.buffered <= limits.buffer_limit

    for _ in range(len(stream) * 4 + 100):
        event = conn.next_event()
        if event is NEED_DATA:
            assert conn.wants_data, "waiting for data while refusing to read"
            read()
        elif event is PAUSED:
            while fill_while_paused and conn.wants_data and sent < len(stream):
                read()
            respond(conn, body=b"")
            if not conn.reusable:
                return
            conn.start_next_cycle()
        elif type(event) in (BadRequest, ClientEOF):
            return
    raise AssertionError("no progress")


def test_long_request_line_with_its_crlf_cannot_fill_the_buffer(hp: Any) -> None:
    # A request line over the limit that arrives with its CRLF, followed by a head
    # that never ends: it must be refused before the buffer fills, not wait forever.
    limits = Limits()
    conn = hp.conn(limits)
    data = b"GET /" + b"a" * 60_000 + b" HTTP/1.1\r\nHost: h\r\nX-Pad: " + b"p" * 10_000
    while conn.wants_data and data:
        take = limits.buffer_limit - conn.buffered
        conn.receive_data(data[:take])
        data = data[take:]
        event = conn.next_event()
        if event is not NEED_DATA:
            break
    assert type(event) is BadRequest
    assert event.status == 414


def test_detach_hands_over_the_unread_bytes(hp: Any) -> None:
    conn = hp.conn()
    head = hp.Client().request(
        b"GET", b"/ws", [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")]
    )
    frame = b"\x81\x85\x00\x00\x00\x00hello"
    events = hp.feed(conn, head + frame)
    assert only_head(events).raw_path == b"/ws"
    assert conn.detach() == frame
    assert conn.buffered == 0
    assert hp.feed(conn, b"more") == [ClientEOF(clean=False)]


def test_response_before_the_body_then_drain_and_reuse(hp: Any) -> None:
    conn = hp.conn()
    client = hp.Client()
    data = client.request(b"POST", b"/", body=b"0123456789")
    events = hp.feed(conn, data[:-6])
    assert events[-1] is NEED_DATA
    reply = client.response(respond(conn, 413, None, b"no"))
    assert reply.status == 413
    assert not conn.reusable  # the request is not read to its end yet
    assert hp.feed(conn, data[-6:]) == [BodyData(b"456789"), EndOfBody(), PAUSED]
    assert conn.reusable
    conn.start_next_cycle()
    client.next_cycle()
    assert only_head(hp.feed(conn, client.request(b"GET", b"/next"))).raw_path == b"/next"


@pytest.mark.parametrize("chunked", [False, True])
def test_large_body_streams_through_a_bounded_buffer(hp: Any, chunked: bool) -> None:
    limits = Limits()
    conn = hp.conn(limits)
    payload = bytes(range(256)) * 4096  # 1 MiB
    client = hp.Client()
    if chunked:
        headers = [(b"host", b"h"), (b"transfer-encoding", b"chunked")]
        data = client.head_only(b"POST", b"/", headers)
        data += client.h11.send(h11.Data(data=payload)) + client.h11.send(h11.EndOfMessage())
    else:
        data = client.request(b"POST", b"/", body=payload)
    received = b""
    event: Any = NEED_DATA
    while event is not PAUSED:
        event = conn.next_event()
        if event is NEED_DATA:
            assert conn.wants_data
            conn.receive_data(data[:65536])
            data = data[65536:]
            assert conn.buffered <= limits.buffer_limit
        elif type(event) is BodyData:
            received += event.data
    assert received == payload


@pytest.mark.parametrize("byte", [b"\x01", b"\x1b", b"\x7f", b"\x0b"])
def test_control_characters_in_the_head_are_a_bad_request(hp: Any, byte: bytes) -> None:
    # h11 keeps CTLs other than CR, LF and NUL in field values; RFC 9110 section 5.5
    # lets a recipient refuse them, and an app or a log should never see an escape code.
    conn = hp.conn()
    events = hp.feed(conn, b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a" + byte + b"b\r\n\r\n")
    assert events == [BadRequest(400, "control character in request head")]
