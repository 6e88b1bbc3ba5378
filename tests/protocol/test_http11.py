"""HTTP11Connection against a real h11 client: requests in, EOF, responses out, no body
for HEAD/204/304, and 100-continue.

Keep-alive and pipelining are in test_http11_keepalive.py; everything where we are
stricter than h11, and the any-split properties, in test_http11_strict.py. Request-target
forms are also tested in test_target.py and chunked framing in test_chunked.py.
"""

from __future__ import annotations

import re
from typing import Any

import h11
import pytest
from http11_helpers import body_of, exchange, only_head, respond

from trio_asgi._protocol._http11 import (
    NEED_DATA,
    PAUSED,
    BadRequest,
    BodyData,
    ClientEOF,
    EndOfBody,
    ResponseError,
)

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
