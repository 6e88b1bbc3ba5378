"""Requests and responses on HTTP/2 streams, driven by a real h2 client."""

from __future__ import annotations

import h2.events
import pytest
from h2.errors import ErrorCodes

from tests.protocol.http2_helpers import REQUEST, Pair, RawClient, post
from trio_asgi._protocol._http2_events import (
    BodyEnded,
    BodyReceived,
    ConnectionTerminated,
    RequestReceived,
    RequestRejected,
    StreamReset,
)
from trio_asgi._protocol._http2_response import H2ResponseError


def only(events, kind):
    found = [e for e in events if isinstance(e, kind)]
    assert len(found) == 1, events
    return found[0]


def test_a_get_becomes_a_request_head_like_http11() -> None:
    pair = Pair(scheme="https")
    stream_id = pair.request([*REQUEST, (b"user-agent", b"h2")])
    head = only(pair.exchange(), RequestReceived)
    assert head.stream_id == stream_id
    assert head.end_stream
    assert head.head.method == "GET"
    assert head.head.raw_path == b"/a%20b"
    assert head.head.query_string == b"x=1"
    assert head.head.http_version == "2"
    assert head.head.scheme == "https"  # the connection's, not the client's :scheme
    assert head.head.headers == [(b"host", b"example.com"), (b"user-agent", b"h2")]


def test_the_response_reaches_the_client() -> None:
    pair = Pair()
    stream_id = pair.request(REQUEST)
    pair.exchange()
    pair.server.send_response_head(stream_id, 200, [(b"content-type", b"text/plain")])
    assert pair.server.send_body(stream_id, b"hello", end_stream=True).remaining == 0
    events = pair.to_client()
    response = only(events, h2.events.ResponseReceived)
    assert (b":status", b"200") in response.headers
    assert b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived)) == b"hello"
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)


def test_split_cookie_crumbs_are_joined_in_place() -> None:
    pair = Pair()
    pair.request([*REQUEST, (b"cookie", b"a=1"), (b"accept", b"*/*"), (b"cookie", b"b=2")])
    head = only(pair.exchange(), RequestReceived).head
    assert head.headers == [
        (b"host", b"example.com"),
        (b"cookie", b"a=1; b=2"),
        (b"accept", b"*/*"),
    ]


def test_a_host_header_agreeing_with_authority_is_kept_once() -> None:
    pair = Pair()
    pair.request([*REQUEST, (b"host", b"example.com")])
    head = only(pair.exchange(), RequestReceived).head
    assert head.headers == [(b"host", b"example.com")]


def test_a_host_header_disagreeing_with_authority_is_refused() -> None:
    client = RawClient()
    client.frames(client.headers(1, [*REQUEST, (b"host", b"evil.example")]))
    assert client.resets() == {1: ErrorCodes.PROTOCOL_ERROR}
    assert not any(isinstance(e, RequestReceived) for e in client.events)


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ([(b":method", b"CONNECT"), (b":authority", b"example.com:443")], 501),
        (
            [(b":method", b"GET"), (b":scheme", b"ftp"), (b":authority", b"a"), (b":path", b"/")],
            400,
        ),
        (
            [
                (b":method", b"GET"),
                (b":scheme", b"http"),
                (b":authority", b"a@b"),
                (b":path", b"/"),
            ],
            400,
        ),
        (
            [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a"), (b":path", b"x")],
            400,
        ),
        (
            [
                (b":method", b"GET"),
                (b":scheme", b"http"),
                (b":authority", b"a"),
                (b":path", b"/#f"),
            ],
            400,
        ),
        (
            [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a"), (b":path", b"*")],
            400,
        ),
        (
            [
                (b":method", b"CONNECT"),
                (b":protocol", b"smtp"),
                (b":scheme", b"http"),
                (b":authority", b"a"),
                (b":path", b"/"),
            ],
            501,
        ),
    ],
    ids=[
        "connect",
        "scheme",
        "userinfo",
        "relative-path",
        "fragment",
        "asterisk-get",
        "unknown-protocol",
    ],
)
def test_requests_we_do_not_serve_get_a_status_and_never_reach_the_app(fields, status) -> None:
    client = RawClient()
    client.frames(client.headers(1, fields))
    rejected = only(client.events, RequestRejected)
    assert rejected.status == status
    assert not any(isinstance(e, RequestReceived) for e in client.events)
    statuses = [f for f in client.sent_frames() if type(f).__name__ == "HeadersFrame"]
    assert len(statuses) == 1
    assert client.server.terminated is None


def test_options_asterisk_is_served() -> None:
    pair = Pair()
    pair.request(
        [(b":method", b"OPTIONS"), (b":scheme", b"http"), (b":authority", b"a"), (b":path", b"*")]
    )
    assert only(pair.exchange(), RequestReceived).head.raw_path == b"*"


def test_extended_connect_websocket_is_recognised() -> None:
    pair = Pair()
    pair.request(
        [
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", b"http"),
            (b":authority", b"a"),
            (b":path", b"/chat"),
            (b"sec-websocket-version", b"13"),
        ],
        end_stream=False,
    )
    head = only(pair.exchange(), RequestReceived).head
    assert head.websocket
    assert head.raw_path == b"/chat"
    # and the client saw the setting that allows it (RFC 8441 section 3)
    assert pair.client.remote_settings.enable_connect_protocol == 1


def test_a_body_arrives_in_order_then_ends_with_trailers() -> None:
    pair = Pair()
    stream_id = pair.request(
        post(b"/u", (b"content-length", b"6"), (b"te", b"trailers")), end_stream=False
    )
    pair.client.send_data(stream_id, b"abc")
    pair.client.send_data(stream_id, b"def")
    pair.client.send_headers(stream_id, [(b"x-checksum", b"1")], end_stream=True)
    events = pair.exchange()
    head = only(events, RequestReceived)
    assert not head.end_stream
    assert head.head.content_length == 6
    assert head.head.accepts_trailers
    assert b"".join(e.data for e in events if isinstance(e, BodyReceived)) == b"abcdef"
    assert only(events, BodyEnded).trailers == ((b"x-checksum", b"1"),)


def test_a_client_reset_tells_the_app_to_stop() -> None:
    pair = Pair()
    stream_id = pair.request(post(), end_stream=False)
    pair.exchange()
    pair.client.reset_stream(stream_id, ErrorCodes.CANCEL)
    reset = only(pair.exchange(), StreamReset)
    assert reset.by_peer
    assert reset.error_code == ErrorCodes.CANCEL
    # the app's later sends are dropped, not errors
    pair.server.send_response_head(stream_id, 200, [])
    assert pair.server.send_body(stream_id, b"late").remaining == 0
    assert pair.server.data_to_send() == b""


@pytest.mark.parametrize(("method", "status"), [(b"HEAD", 200), (b"GET", 204), (b"GET", 304)])
def test_no_body_for_head_204_304(method: bytes, status: int) -> None:
    pair = Pair()
    stream_id = pair.request([(b":method", method), *REQUEST[1:]])
    pair.exchange()
    pair.server.send_response_head(stream_id, status, [(b"content-length", b"5")])
    assert pair.server.send_body(stream_id, b"hello", end_stream=True).remaining == 0
    events = pair.to_client()
    assert not [e for e in events if isinstance(e, h2.events.DataReceived) and e.data]
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)
    assert pair.server.in_flight == ()


def test_response_trailers_end_the_stream() -> None:
    pair = Pair()
    stream_id = pair.request([*REQUEST, (b"te", b"trailers")])
    pair.exchange()
    pair.server.send_response_head(stream_id, 200, [])
    pair.server.send_body(stream_id, b"data")
    pair.server.send_trailers(stream_id, [(b"grpc-status", b"0")])
    events = pair.to_client()
    trailers = only(events, h2.events.TrailersReceived)
    assert trailers.headers == [(b"grpc-status", b"0")]
    assert trailers.stream_ended is not None


def test_early_hints_come_before_the_final_response() -> None:
    pair = Pair()
    stream_id = pair.request(REQUEST)
    pair.exchange()
    pair.server.send_informational(stream_id, 103, [(b"link", b"</s.css>; rel=preload")])
    pair.server.send_response_head(stream_id, 200, [], end_stream=True)
    events = pair.to_client()
    kinds = [type(e).__name__ for e in events]
    assert kinds[:2] == ["InformationalResponseReceived", "ResponseReceived"]


@pytest.mark.parametrize("value", [b"a\r\nb", b"a\x00"])
def test_response_header_values_with_cr_lf_nul_are_refused(value: bytes) -> None:
    pair = Pair()
    stream_id = pair.request(REQUEST)
    pair.exchange()
    with pytest.raises(H2ResponseError):
        pair.server.send_response_head(stream_id, 200, [(b"x-split", value)])


def test_a_client_goaway_lets_in_flight_streams_finish() -> None:
    pair = Pair()
    stream_id = pair.request(REQUEST)
    pair.exchange()
    pair.client.close_connection()
    terminated = only(pair.exchange(), ConnectionTerminated)
    assert terminated.by_peer
    assert terminated.graceful
    assert terminated.in_flight == (stream_id,)
    assert pair.server.terminated is None
    # the response still goes out in full
    pair.server.send_response_head(stream_id, 200, [])
    pair.server.send_body(stream_id, b"still here", end_stream=True)
    data = pair.server.data_to_send()
    assert b"still here" in data


def test_a_new_stream_after_the_client_goaway_is_refused() -> None:
    client = RawClient()
    from hyperframe.frame import GoAwayFrame

    client.frames(GoAwayFrame(0, last_stream_id=0))
    client.frames(client.headers(1))
    assert client.resets() == {1: ErrorCodes.REFUSED_STREAM}


def test_an_error_goaway_from_the_client_ends_everything() -> None:
    pair = Pair()
    pair.request(REQUEST)
    pair.exchange()
    pair.client.close_connection(ErrorCodes.INTERNAL_ERROR)
    terminated = only(pair.exchange(), ConnectionTerminated)
    assert not terminated.graceful
    assert pair.server.terminated is terminated


def test_eof_ends_the_connection_without_grace() -> None:
    pair = Pair()
    stream_id = pair.request(REQUEST)
    pair.exchange()
    (terminated,) = pair.server.receive_data(b"", 0.0)
    assert isinstance(terminated, ConnectionTerminated)
    assert not terminated.graceful
    assert terminated.in_flight == (stream_id,)


def test_a_refused_upload_is_answered_then_stopped() -> None:
    client = RawClient()
    fields = [(b":method", b"POST"), (b":scheme", b"ftp"), (b":authority", b"a"), (b":path", b"/")]
    client.frames(client.headers(1, fields, flags=("END_HEADERS",)))
    # a complete 400, then RST_STREAM NO_ERROR so that the client stops sending the body
    assert client.resets() == {1: ErrorCodes.NO_ERROR}
    assert only(client.events, RequestRejected).status == 400


def test_http11_habits_in_a_response_head_are_dropped() -> None:
    pair = Pair()
    stream_id = pair.request(REQUEST)
    pair.exchange()
    habits = [
        (b"Connection", b"keep-alive"),
        (b"transfer-encoding", b"chunked"),
        (b"te", b"gzip"),
        (b"x-kept", b"1"),
    ]
    pair.server.send_response_head(stream_id, 200, habits, end_stream=True)
    response = only(pair.to_client(), h2.events.ResponseReceived)
    assert response.headers == [(b":status", b"200"), (b"x-kept", b"1")]


@pytest.mark.parametrize("name", [b"", b"x y", b":status", b"a:b", b"x\r\n"])
def test_invalid_response_header_names_are_the_apps_error(name: bytes) -> None:
    pair = Pair()
    stream_id = pair.request(REQUEST)
    pair.exchange()
    with pytest.raises(H2ResponseError):
        pair.server.send_response_head(stream_id, 200, [(name, b"v")])
    # nothing was sent: the ASGI layer answers 500 on the same stream
    pair.server.send_response_head(stream_id, 500, [], end_stream=True)
    response = only(pair.to_client(), h2.events.ResponseReceived)
    assert response.headers[0] == (b":status", b"500")


def test_the_head_feeds_the_same_scope_builder_as_http11() -> None:
    # The protocol-neutral cycle builds the scope from the head's fields; the HTTP/2
    # head has the HTTP/1.1 head's names, so _scope.http_scope serves both (its
    # annotation still names the HTTP/1.1 RequestHead: the seam should take a Protocol).
    from trio_asgi._protocol._scope import http_scope

    pair = Pair(scheme="https")
    pair.request(
        [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", b"h"),
            (b":path", b"/caf%C3%A9/a%2Fb/%FF?q=%20x"),
        ]
    )
    head = only(pair.exchange(), RequestReceived).head
    scope = http_scope(
        head,
        scheme=head.scheme,
        root_path="/root",
        client=None,
        server=None,
        state={},
        extensions={},
    )
    assert scope["http_version"] == "2"
    assert scope["scheme"] == "https"
    assert scope["path"] == "/root/café/a/b/\ufffd"
    assert scope["raw_path"] == b"/root/caf%C3%A9/a%2Fb/%FF"
    assert scope["query_string"] == b"q=%20x"
    assert scope["headers"] == [(b"host", b"h")]
