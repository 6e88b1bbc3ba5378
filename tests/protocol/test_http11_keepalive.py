"""HTTP11Connection: keep-alive and pipelining, against a real h11 client."""

from __future__ import annotations

from typing import Any

from http11_helpers import body_of, only_head, respond

from trio_asgi._protocol._http11 import (
    PAUSED,
    ClientEOF,
    Limits,
)

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
