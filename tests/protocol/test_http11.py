"""HTTP11Connection against a real h11 client: requests in, responses out, keep-alive,
and everything where we are stricter than h11.

Request-target forms are also tested in test_target.py and chunked framing in
test_chunked.py. The last section checks, with hypothesis, that any split of the
input gives the same events and that the receive buffer stays bounded.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

import h11
import pytest
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
    ResponseError,
)


def only_head(events: list[Any]) -> RequestHead:
    heads = [event for event in events if type(event) is RequestHead]
    assert len(heads) == 1, events
    return heads[0]


def body_of(events: list[Any]) -> bytes:
    return b"".join(event.data for event in events if type(event) is BodyData)


# --- requests in ----------------------------------------------------------------------------


def test_asgi_example_request_fields(hp: Any) -> None:
    conn = hp.conn()
    data = hp.Client().request(b"GET", b"/caf%C3%A9/a%2Fb/%FF?q=%20x")
    events = hp.feed(conn, data)
    assert events == [only_head(events), PAUSED]
    head = only_head(events)
    assert head.method == "GET"
    assert head.http_version == "1.1"
    assert head.raw_target == b"/caf%C3%A9/a%2Fb/%FF?q=%20x"
    assert head.raw_path == b"/caf%C3%A9/a%2Fb/%FF"
    assert head.query_string == b"q=%20x"
    assert head.content_length is None
    assert not head.chunked
    assert conn.request is head
    assert conn.request_complete


def test_no_query_gives_empty_query_string(hp: Any) -> None:
    head = only_head(hp.feed(hp.conn(), hp.Client().request(b"GET", b"/a?")))
    assert (head.raw_path, head.query_string) == (b"/a", b"")
    head = only_head(hp.feed(hp.conn(), hp.Client().request(b"GET", b"/a")))
    assert (head.raw_path, head.query_string) == (b"/a", b"")


def test_headers_lower_cased_with_order_and_duplicates(hp: Any) -> None:
    data = hp.Client().request(
        b"GET", b"/", [(b"X-B", b"2"), (b"Accept", b"a"), (b"x-b", b"1"), (b"X-EMPTY", b"")]
    )
    head = only_head(hp.feed(hp.conn(), data))
    assert head.headers == [
        (b"host", b"example.com"),
        (b"x-b", b"2"),
        (b"accept", b"a"),
        (b"x-b", b"1"),
        (b"x-empty", b""),
    ]


def test_header_values_keep_inner_whitespace_and_lose_outer(hp: Any) -> None:
    raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-A: \t a  b \t\r\n\r\n"
    head = only_head(hp.feed(hp.conn(), raw))
    assert (b"x-a", b"a  b") in head.headers


def test_content_length_body_in_pieces(hp: Any) -> None:
    conn = hp.conn()
    data = hp.Client().request(b"POST", b"/up", body=b"hello world")
    split = data.index(b"\r\n\r\n") + 4
    events = hp.feed(conn, data[: split + 3])
    head = only_head(events)
    assert head.content_length == 11
    assert events[1:] == [BodyData(b"hel"), NEED_DATA]
    assert not conn.request_complete
    assert hp.feed(conn, data[split + 3 : split + 5]) == [BodyData(b"lo"), NEED_DATA]
    assert hp.feed(conn, data[split + 5 :]) == [BodyData(b" world"), EndOfBody(), PAUSED]
    assert conn.request_complete


def test_chunked_body_is_dechunked(hp: Any) -> None:
    client = hp.Client()
    head = client.head_only(b"POST", b"/", [(b"host", b"h"), (b"transfer-encoding", b"chunked")])
    body = b""
    for part in (b"abc", b"", b"0123456789" * 30):
        if part:
            body += client.h11.send(h11.Data(data=part))
    body += client.h11.send(h11.EndOfMessage(headers=[(b"x-checksum", b"1")]))
    conn = hp.conn()
    events = hp.feed(conn, head + body)
    request = only_head(events)
    assert request.chunked
    assert request.content_length is None
    assert body_of(events) == b"abc" + b"0123456789" * 30
    assert events[-2:] == [EndOfBody(), PAUSED]
    # trailers are dropped, never merged into the headers
    assert request.headers == [(b"host", b"h"), (b"transfer-encoding", b"chunked")]


def test_empty_chunked_body(hp: Any) -> None:
    raw = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    events = hp.feed(hp.conn(), raw)
    assert events[1:] == [EndOfBody(), PAUSED]


def test_zero_content_length_is_complete_at_once(hp: Any) -> None:
    conn = hp.conn()
    events = hp.feed(conn, hp.Client().request(b"POST", b"/", body=b""))
    assert only_head(events).content_length == 0
    assert events[-1] is PAUSED
    assert conn.request_complete


def test_te_trailers_and_expect_flags(hp: Any) -> None:
    data = hp.Client().request(b"GET", b"/", [(b"TE", b"Trailers"), (b"Expect", b"100-continue")])
    head = only_head(hp.feed(hp.conn(), data))
    assert head.accepts_trailers
    plain = only_head(hp.feed(hp.conn(), hp.Client().request(b"GET", b"/", [(b"TE", b"gzip")])))
    assert not plain.accepts_trailers
    assert not plain.expects_continue


def test_leading_empty_lines_are_ignored(hp: Any) -> None:
    conn = hp.conn()
    assert hp.feed(conn, b"\r\n") == [NEED_DATA]
    assert hp.feed(conn, b"\r") == [NEED_DATA]
    events = hp.feed(conn, b"\n" + hp.Client().request(b"GET", b"/x"))
    assert only_head(events).raw_path == b"/x"


def test_many_leading_empty_lines_are_a_bad_request(hp: Any) -> None:
    # Regression: each CRLF emptied the buffer, and the I/O layer started a fresh idle
    # deadline, so a client sending only CRLFs could hold a connection forever.
    conn = hp.conn()
    events = hp.feed(conn, b"\r\n" * 3 + hp.Client().request(b"GET", b"/x"))
    assert [type(event) for event in events] == [BadRequest]
    assert events[0].status == 400


def test_http10_request(hp: Any) -> None:
    conn = hp.conn()
    head = only_head(hp.feed(conn, b"GET /old HTTP/1.0\r\n\r\n"))
    assert head.http_version == "1.0"
    reply_bytes = conn.response_head(200, [], close=False) + conn.response_body(b"hi", final=True)
    assert not conn.response_chunked
    reply = hp.Client().response(reply_bytes, eof=True)
    assert reply.http_version == b"1.1"
    assert reply.body == b"hi"
    assert reply.values(b"connection") == [b"close"]
    assert reply.values(b"transfer-encoding") == []
    assert not conn.reusable


# --- EOF ------------------------------------------------------------------------------------


def test_eof_before_any_request_is_clean(hp: Any) -> None:
    conn = hp.conn()
    assert conn.wants_data
    assert hp.feed(conn, b"") == [ClientEOF(clean=True)]
    assert not conn.wants_data
    assert hp.pull(conn) == [ClientEOF(clean=False)]


def test_eof_after_empty_lines_is_clean(hp: Any) -> None:
    conn = hp.conn()
    hp.feed(conn, b"\r\n\r\n")
    assert hp.feed(conn, b"") == [ClientEOF(clean=True)]


def test_truncated_head_then_eof_is_unclean(hp: Any) -> None:
    conn = hp.conn()
    assert hp.feed(conn, b"GET / HTTP/1.1\r\nHost: a\r\n") == [NEED_DATA]
    assert hp.feed(conn, b"") == [ClientEOF(clean=False)]


def test_eof_inside_body_is_unclean(hp: Any) -> None:
    conn = hp.conn()
    data = hp.Client().request(b"POST", b"/", body=b"0123456789")
    events = hp.feed(conn, data[:-4])
    assert events[-1] is NEED_DATA
    assert hp.feed(conn, b"") == [ClientEOF(clean=False)]


def test_eof_while_response_pending_is_unclean(hp: Any) -> None:
    conn = hp.conn()
    hp.feed(conn, hp.Client().request())
    assert hp.feed(conn, b"") == [ClientEOF(clean=False)]


def test_eof_between_requests_is_clean(hp: Any) -> None:
    conn = hp.conn()
    client = hp.Client()
    hp.feed(conn, client.request())
    client.response(respond(conn))
    conn.start_next_cycle()
    assert hp.feed(conn, b"") == [ClientEOF(clean=True)]


# --- responses out --------------------------------------------------------------------------


def respond(
    conn: Any,
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"ok",
    *,
    close: bool = False,
) -> bytes:
    if headers is None:
        headers = [(b"content-length", str(len(body)).encode())]
    return conn.response_head(status, headers, close=close) + conn.response_body(body, final=True)


def exchange(
    hp: Any,
    method: bytes = b"GET",
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"ok",
    **kw: Any,
) -> Any:
    """One request from an h11 client and our response, parsed back by that client."""
    conn = hp.conn(**kw)
    client = hp.Client()
    hp.feed(conn, client.request(method, b"/"))
    return client.response(respond(conn, status, headers, body)), conn


def test_content_length_framing_when_known(hp: Any) -> None:
    reply, conn = exchange(hp, headers=[(b"Content-Length", b"5")], body=b"hello")
    assert not conn.response_chunked
    assert reply.values(b"content-length") == [b"5"]
    assert reply.values(b"transfer-encoding") == []
    assert reply.body == b"hello"


def test_chunked_framing_when_length_unknown(hp: Any) -> None:
    conn = hp.conn()
    client = hp.Client()
    hp.feed(conn, client.request())
    out = conn.response_head(200, [(b"content-type", b"text/plain")], close=False)
    assert conn.response_chunked
    out += conn.response_body(b"a", final=False)
    out += conn.response_body(b"", final=False)
    out += conn.response_body(b"bc", final=True)
    reply = client.response(out)
    assert reply.values(b"transfer-encoding") == [b"chunked"]
    assert reply.body == b"abc"
    assert conn.reusable


def test_response_trailers_on_chunked(hp: Any) -> None:
    conn = hp.conn()
    client = hp.Client()
    hp.feed(conn, client.request(b"GET", b"/", [(b"TE", b"trailers")]))
    out = conn.response_head(200, [], close=False) + conn.response_body(b"x", final=False)
    out += conn.response_body(b"", final=True, trailers=[(b"x-sum", b"9")])
    reply = client.response(out)
    assert reply.trailers == [(b"x-sum", b"9")]


def test_trailers_refused_with_content_length(hp: Any) -> None:
    conn = hp.conn()
    hp.feed(conn, hp.Client().request())
    conn.response_head(200, [(b"content-length", b"1")], close=False)
    with pytest.raises(ResponseError):
        conn.response_body(b"x", final=True, trailers=[(b"x-sum", b"9")])


def test_app_transfer_encoding_is_ignored(hp: Any) -> None:
    reply, conn = exchange(hp, headers=[(b"Transfer-Encoding", b"gzip, chunked")], body=b"hi")
    assert conn.response_chunked
    assert reply.values(b"transfer-encoding") == [b"chunked"]
    assert reply.body == b"hi"
    reply, conn = exchange(
        hp, headers=[(b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"2")], body=b"hi"
    )
    assert not conn.response_chunked
    assert reply.values(b"transfer-encoding") == []
    assert reply.values(b"content-length") == [b"2"]


@pytest.mark.parametrize("status", [200, 201, 299, 418, 451, 499, 599, 226, 308])
def test_reason_phrase_always_present(hp: Any, status: int) -> None:
    conn = hp.conn()
    hp.feed(conn, hp.Client().request())
    raw = conn.response_head(status, [(b"content-length", b"0")], close=False)
    assert re.match(rb"HTTP/1\.1 %d [!-~][ -~]*\r\n" % status, raw), raw


def test_unknown_codes_get_their_class_phrase(hp: Any) -> None:
    reply, _ = exchange(hp, status=299)
    assert reply.reason == b"Success"
    reply, _ = exchange(hp, status=599)
    assert reply.reason == b"Server Error"
    reply, _ = exchange(hp, status=404)
    assert reply.reason == b"Not Found"


def test_date_and_server_added(hp: Any) -> None:
    reply, _ = exchange(hp, server_header=True, date_header=True)
    assert reply.values(b"server")[0].startswith(b"trio-asgi/")
    (date,) = reply.values(b"date")
    assert re.fullmatch(rb"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", date)


def test_date_and_server_not_duplicated_when_present(hp: Any) -> None:
    headers = [(b"Server", b"mine"), (b"DATE", b"yesterday"), (b"content-length", b"2")]
    reply, _ = exchange(hp, headers=headers, server_header=True, date_header=True)
    assert reply.values(b"server") == [b"mine"]
    assert reply.values(b"date") == [b"yesterday"]


def test_date_and_server_can_be_disabled(hp: Any) -> None:
    reply, _ = exchange(hp, server_header=False, date_header=False)
    assert reply.values(b"server") == []
    assert reply.values(b"date") == []


def test_configured_default_headers(hp: Any) -> None:
    extra = (("X-Frame-Options", "DENY"), ("X-Env", "test"))
    reply, _ = exchange(hp, extra=extra)
    assert reply.values(b"x-frame-options") == [b"DENY"]
    assert reply.values(b"x-env") == [b"test"]
    headers = [(b"x-env", b"app"), (b"content-length", b"2")]
    reply, _ = exchange(hp, headers=headers, extra=extra)
    assert reply.values(b"x-env") == [b"app"]
    assert reply.values(b"x-frame-options") == [b"DENY"]


def test_close_adds_connection_close(hp: Any) -> None:
    conn = hp.conn()
    client = hp.Client()
    hp.feed(conn, client.request())
    reply = client.response(respond(conn, close=True))
    assert reply.values(b"connection") == [b"close"]
    assert not conn.reusable


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"x-a", b"a\r\nSet-Cookie: evil=1"),
        (b"x-a", b"a\nb"),
        (b"x-a", b"a\rb"),
        (b"x-a", b"a\x00b"),
        (b"x-a\r\nx-b", b"1"),
        (b"x a", b"1"),
        (b"", b"1"),
        (b"content-length", b"five"),
    ],
)
def test_invalid_response_header_refused(hp: Any, name: bytes, value: bytes) -> None:
    conn = hp.conn()
    client = hp.Client()
    hp.feed(conn, client.request())
    with pytest.raises(ResponseError):
        conn.response_head(200, [(name, value)], close=False)
    # Nothing was sent: a correct response can still follow.
    reply = client.response(respond(conn))
    assert reply.status == 200
    assert reply.body == b"ok"


@pytest.mark.parametrize("status", [100, 101, 103, 199])
def test_informational_status_refused_as_final(hp: Any, status: int) -> None:
    conn = hp.conn()
    hp.feed(conn, hp.Client().request())
    with pytest.raises(ResponseError):
        conn.response_head(status, [], close=False)


def test_body_longer_than_content_length(hp: Any) -> None:
    conn = hp.conn()
    hp.feed(conn, hp.Client().request())
    conn.response_head(200, [(b"content-length", b"3")], close=False)
    with pytest.raises(ResponseError):
        conn.response_body(b"four", final=False)
    assert not conn.reusable


def test_body_shorter_than_content_length(hp: Any) -> None:
    conn = hp.conn()
    hp.feed(conn, hp.Client().request())
    conn.response_head(200, [(b"content-length", b"3")], close=False)
    assert conn.response_body(b"ab", final=False) == b"ab"
    with pytest.raises(ResponseError):
        conn.response_body(b"", final=True)
    assert not conn.reusable


# --- no body for HEAD, 204, 304, with the framing still right --------------------------------


@pytest.mark.parametrize(
    ("method", "status", "headers"),
    [
        (b"HEAD", 200, [(b"content-length", b"5")]),
        (b"HEAD", 200, []),
        (b"GET", 204, []),
        (b"GET", 304, [(b"etag", b'"x"')]),
        (b"POST", 204, []),
    ],
)
def test_no_body_and_the_next_response_still_parses(
    hp: Any, method: bytes, status: int, headers: list[tuple[bytes, bytes]]
) -> None:
    conn = hp.conn()
    client = hp.Client()
    hp.feed(conn, client.request(method, b"/first"))
    out = conn.response_head(status, headers, close=False)
    assert not conn.response_chunked
    out += conn.response_body(b"hello", final=False)
    out += conn.response_body(b"", final=True)
    assert b"hello" not in out
    # The second response follows the first in the same byte stream: had a body byte
    # leaked, the client would read it as the start of the next status line.
    assert conn.reusable
    conn.start_next_cycle()
    events = hp.feed(conn, hp.Client().request(b"GET", b"/second"))
    assert only_head(events).raw_path == b"/second"
    out += respond(conn, 200, None, b"second")
    first = client.response(out)
    assert first.status == status
    assert first.body == b""
    client.next_cycle()
    client.request(b"GET", b"/second")
    second = client.response(b"")
    assert second.body == b"second"


def test_head_response_without_length_sends_no_body(hp: Any) -> None:
    conn = hp.conn()
    client = hp.Client()
    hp.feed(conn, client.request(b"HEAD", b"/"))
    out = conn.response_head(200, [], close=False) + conn.response_body(b"xyz", final=True)
    assert out.endswith(b"\r\n\r\n")
    assert client.response(out).body == b""


# --- 100-continue ----------------------------------------------------------------------------


def test_continue_sent_once_when_asked(hp: Any) -> None:
    conn = hp.conn()
    client = hp.Client()
    data = client.request(b"POST", b"/", [(b"Expect", b"100-continue")], body=b"abc")
    head_end = data.index(b"\r\n\r\n") + 4
    events = hp.feed(conn, data[:head_end])
    assert only_head(events).expects_continue
    assert events[-1] is NEED_DATA
    interim = conn.continue_response()
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert client.interim(interim).status_code == 100
    assert conn.continue_response() == b""
    assert body_of(hp.feed(conn, data[head_end:])) == b"abc"
    assert client.response(respond(conn)).status == 200


def test_no_continue_once_the_body_started(hp: Any) -> None:
    conn = hp.conn()
    data = hp.Client().request(b"POST", b"/", [(b"Expect", b"100-continue")], body=b"abc")
    events = hp.feed(conn, data[:-1])
    assert only_head(events).expects_continue
    assert conn.continue_response() == b""


def test_no_continue_without_expect(hp: Any) -> None:
    conn = hp.conn()
    head = only_head(hp.feed(conn, hp.Client().request(b"POST", b"/", body=b"abc")))
    assert not head.expects_continue
    assert conn.continue_response() == b""


def test_no_continue_for_http10(hp: Any) -> None:
    conn = hp.conn()
    raw = b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
    assert not only_head(hp.feed(conn, raw)).expects_continue
    assert conn.continue_response() == b""


# --- keep-alive and pipelining --------------------------------------------------------------


def test_keep_alive_cycles(hp: Any) -> None:
    conn = hp.conn()
    client = hp.Client()
    for i in range(3):
        target = b"/%d" % i
        events = hp.feed(conn, client.request(b"POST", target, body=b"x" * i))
        assert only_head(events).raw_path == target
        assert body_of(events) == b"x" * i
        assert client.response(respond(conn, body=target)).body == target
        assert conn.reusable
        conn.start_next_cycle()
        assert conn.request is None
        assert not conn.request_complete
        client.next_cycle()


def test_connection_close_request_is_not_reusable(hp: Any) -> None:
    conn = hp.conn()
    client = hp.Client()
    hp.feed(conn, client.request(b"GET", b"/", [(b"Connection", b"close")]))
    reply = client.response(respond(conn))
    assert reply.values(b"connection") == [b"close"]
    assert not conn.reusable


def test_not_reusable_before_response_done(hp: Any) -> None:
    conn = hp.conn()
    hp.feed(conn, hp.Client().request())
    assert not conn.reusable
    conn.response_head(200, [], close=False)
    assert not conn.reusable


def test_pipelined_requests_parsed_in_order_after_start_next_cycle(hp: Any) -> None:
    client = hp.Client()
    first = client.request(b"POST", b"/1", body=b"one")
    client.response(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    client.next_cycle()
    second = client.request(b"GET", b"/2")
    client.response(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    client.next_cycle()
    third = client.request(b"PUT", b"/3", body=b"three")

    conn = hp.conn()
    events = hp.feed(conn, first + second + third)
    assert only_head(events).raw_path == b"/1"
    assert body_of(events) == b"one"
    assert events[-1] is PAUSED
    # Nothing of the second request is parsed while the first is being answered.
    assert hp.pull(conn) == [PAUSED]
    assert conn.buffered == len(second + third)
    parser = hp.Client()
    parser.request(b"POST", b"/1", body=b"one")
    out = respond(conn, body=b"r1")
    conn.start_next_cycle()
    events = hp.pull(conn)
    assert only_head(events).raw_path == b"/2"
    assert events[-1] is PAUSED
    out += respond(conn, body=b"r2")
    conn.start_next_cycle()
    events = hp.pull(conn)
    assert only_head(events).raw_path == b"/3"
    assert body_of(events) == b"three"
    out += respond(conn, body=b"r3")
    conn.start_next_cycle()
    assert hp.feed(conn, b"") == [ClientEOF(clean=True)]
    # The three responses, back to back, parse in order.
    assert parser.response(out).body == b"r1"
    for target, body in ((b"/2", b"r2"), (b"/3", b"r3")):
        parser.next_cycle()
        parser.request(b"GET", target)
        assert parser.response(b"").body == body


def test_pipelined_request_after_eof_still_served(hp: Any) -> None:
    conn = hp.conn()
    client = hp.Client()
    first = client.request(b"GET", b"/1")
    conn.receive_data(first + hp.Client().request(b"GET", b"/2"))
    conn.receive_data(b"")
    assert only_head(hp.pull(conn)).raw_path == b"/1"
    respond(conn)
    conn.start_next_cycle()
    assert only_head(hp.pull(conn)).raw_path == b"/2"
    respond(conn)
    conn.start_next_cycle()
    assert hp.pull(conn) == [ClientEOF(clean=True)]


def test_wants_data_false_when_buffer_full(hp: Any) -> None:
    limits = Limits()
    conn = hp.conn(limits)
    hp.feed(conn, hp.Client().request())
    junk = hp.Client().request(b"GET", b"/" + b"a" * 1000)
    while conn.wants_data:
        conn.receive_data(junk)
        assert hp.pull(conn) == [PAUSED]
    assert conn.buffered >= limits.buffer_limit


def test_buffer_limit_covers_the_largest_head(hp: Any) -> None:
    limits = Limits(max_header_size=100_000, max_target_length=50_000)
    assert limits.buffer_limit >= limits.max_request_line + limits.max_header_size + 4
    assert Limits().buffer_limit == 65536


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
