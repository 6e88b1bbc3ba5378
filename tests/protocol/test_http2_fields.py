"""RFC 9113's field rules for received header blocks, applied by us with h2's own checks off.

h2's inbound validation is off (it walked the fields through seven generators); the
rules are :mod:`trio_asgi._protocol._http2_fields`'s. Each rule has a frame-level
test (the stream is reset with PROTOCOL_ERROR, the connection serves on), and a
property test holds our checks to h2's on generated blocks, so that turning h2's off
lost no rule and added none.
"""

from __future__ import annotations

import h2.exceptions
import h2.utilities
import pytest
from h2.errors import ErrorCodes
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.protocol.http2_helpers import REQUEST, RawClient, post
from trio_asgi._protocol._http2_events import BodyEnded, RequestReceived, StreamReset
from trio_asgi._protocol._http2_fields import check_trailer_fields, split_request_fields

Fields = list[tuple[bytes, bytes]]

_REQUEST_FLAGS = h2.utilities.HeaderValidationFlags(
    is_client=False, is_trailer=False, is_response_header=False, is_push_promise=False
)
_TRAILER_FLAGS = h2.utilities.HeaderValidationFlags(
    is_client=False, is_trailer=True, is_response_header=False, is_push_promise=False
)


def h2_refuses(fields: Fields, flags: h2.utilities.HeaderValidationFlags) -> bool:
    try:
        list(h2.utilities.validate_headers(fields, flags))
    except h2.exceptions.ProtocolError:
        return True
    return False


MALFORMED_REQUESTS: dict[str, Fields] = {
    "upper-case name": [*REQUEST, (b"X-Upper", b"1")],
    "space in a name": [*REQUEST, (b"x y", b"1")],
    "control byte in a name": [*REQUEST, (b"x\x01", b"1")],
    "non-ASCII name": [*REQUEST, ("é".encode(), b"1")],
    "colon inside a name": [*REQUEST, (b"x:y", b"1")],
    "empty name": [*REQUEST, (b"", b"1")],
    "CR in a value": [*REQUEST, (b"x", b"a\rb")],
    "LF in a value": [*REQUEST, (b"x", b"a\nb")],
    "NUL in a value": [*REQUEST, (b"x", b"a\x00b")],
    "NUL in a pseudo-header value": [(b":method", b"GET\x00"), *REQUEST[1:]],
    "leading space in a value": [*REQUEST, (b"x", b" a")],
    "trailing tab in a value": [*REQUEST, (b"x", b"a\t")],
    "connection": [*REQUEST, (b"connection", b"close")],
    "keep-alive": [*REQUEST, (b"keep-alive", b"5")],
    "proxy-connection": [*REQUEST, (b"proxy-connection", b"x")],
    "transfer-encoding": [*REQUEST, (b"transfer-encoding", b"chunked")],
    "upgrade": [*REQUEST, (b"upgrade", b"h2c")],
    "te other than trailers": [*REQUEST, (b"te", b"gzip")],
    "unknown pseudo-header": [*REQUEST, (b":foo", b"1")],
    ":status in a request": [(b":status", b"200"), *REQUEST],
    "repeated pseudo-header": [*REQUEST, (b":path", b"/again")],
    "pseudo-header after a regular field": [*REQUEST[:3], (b"x", b"1"), REQUEST[3]],
    "no :method": REQUEST[1:],
    "no :scheme": [REQUEST[0], *REQUEST[2:]],
    "no :path": REQUEST[:3],
    "empty :path": [*REQUEST[:3], (b":path", b"")],
    "plain CONNECT with :path": [
        (b":method", b"CONNECT"),
        (b":authority", b"a:443"),
        (b":path", b"/"),
    ],
    "plain CONNECT with :scheme": [
        (b":method", b"CONNECT"),
        (b":authority", b"a:443"),
        (b":scheme", b"http"),
    ],
    "extended CONNECT without :path": [
        (b":method", b"CONNECT"),
        (b":protocol", b"websocket"),
        (b":scheme", b"http"),
        (b":authority", b"a"),
    ],
    ":protocol on a GET": [*REQUEST, (b":protocol", b"websocket")],
    "neither :authority nor host": [REQUEST[0], REQUEST[1], REQUEST[3]],
    "two host fields": [REQUEST[0], REQUEST[1], REQUEST[3], (b"host", b"a"), (b"host", b"a")],
    ":authority and host disagree": [*REQUEST, (b"host", b"evil.example")],
}

MALFORMED_TRAILERS: dict[str, Fields] = {
    "pseudo-header": [(b":path", b"/")],
    "upper-case name": [(b"X-Sum", b"1")],
    "connection-specific": [(b"connection", b"close")],
    "te other than trailers": [(b"te", b"gzip")],
    "CR in a value": [(b"x-sum", b"1\r\n")],
    "trailing space": [(b"x-sum", b"1 ")],
}


@pytest.mark.parametrize("fields", MALFORMED_REQUESTS.values(), ids=MALFORMED_REQUESTS.keys())
def test_a_malformed_request_resets_its_stream_and_the_connection_serves_on(fields: Fields) -> None:
    assert h2_refuses(fields, _REQUEST_FLAGS)  # a rule h2 enforced itself
    client = RawClient()
    client.frames(client.headers(1, fields))
    assert client.resets() == {1: ErrorCodes.PROTOCOL_ERROR}
    assert not any(isinstance(e, RequestReceived) for e in client.events)
    client.frames(client.headers(3, REQUEST))
    assert [e.stream_id for e in client.events if isinstance(e, RequestReceived)] == [3]
    assert client.goaway() is None


@pytest.mark.parametrize("fields", MALFORMED_TRAILERS.values(), ids=MALFORMED_TRAILERS.keys())
def test_malformed_trailers_reset_the_stream_before_the_body_ends(fields: Fields) -> None:
    assert h2_refuses(fields, _TRAILER_FLAGS)
    client = RawClient()
    client.frames(
        client.headers(1, post(b"/u"), flags=("END_HEADERS",)),
        client.headers(1, fields, flags=("END_HEADERS", "END_STREAM")),
    )
    assert client.resets() == {1: ErrorCodes.PROTOCOL_ERROR}
    assert [type(e) for e in client.events] == [RequestReceived, StreamReset]
    assert not any(isinstance(e, BodyEnded) for e in client.events)
    assert client.goaway() is None


def test_well_formed_edge_cases_are_served() -> None:
    fields = [
        *REQUEST,
        (b"te", b"Trailers"),  # h2 compares it without case
        (b"x-empty", b""),
        (b"x!#$%&'*+-.^_`|~", b"a b"),
        (b"host", b"example.com"),
    ]
    client = RawClient()
    client.frames(client.headers(1, fields))
    assert client.resets() == {}
    assert [type(e) for e in client.events] == [RequestReceived]


# --- our rules against h2's, on generated blocks ---------------------------------------------

_NAMES = st.sampled_from(
    [
        b":method",
        b":scheme",
        b":authority",
        b":path",
        b":protocol",
        b":status",
        b":x",
        b":",
        b"",
        b"host",
        b"Host",
        b"te",
        b"connection",
        b"upgrade",
        b"cookie",
        b"content-length",
        b"x-a",
        b"x a",
        b"x:a",
        b"x\x7f",
    ]
) | st.binary(max_size=3)
_VALUES = st.sampled_from(
    [
        b"",
        b"GET",
        b"CONNECT",
        b"/",
        b"http",
        b"a",
        b"b",
        b"websocket",
        b"trailers",
        b"TRAILERS",
        b"gzip",
        b" a",
        b"a\t",
        b"a\r\nb",
        b"\x00",
    ]
) | st.binary(max_size=3)
_FIELD = st.tuples(_NAMES, _VALUES)


@st.composite
def request_blocks(draw: st.DrawFn) -> Fields:
    """Mostly near-valid requests (a valid one, then a few fields shuffled, dropped or added)."""
    start = draw(
        st.sampled_from(
            [
                list(REQUEST),
                [(b":method", b"CONNECT"), (b":authority", b"a:443")],
                [
                    (b":method", b"CONNECT"),
                    (b":protocol", b"websocket"),
                    (b":scheme", b"http"),
                    (b":path", b"/"),
                    (b":authority", b"a"),
                ],
                [],
            ]
        )
    )
    fields = list(draw(st.permutations(start))) if draw(st.booleans()) else start
    if fields and draw(st.booleans()):
        del fields[draw(st.integers(0, len(fields) - 1))]
    for _ in range(draw(st.integers(0, 3))):
        fields.insert(draw(st.integers(0, len(fields))), draw(_FIELD))
    return fields


@settings(max_examples=1500, deadline=None)
@given(request_blocks())
def test_a_request_block_is_refused_exactly_when_h2_would_refuse_it(fields: Fields) -> None:
    ours = split_request_fields(fields)
    assert isinstance(ours, str) == h2_refuses(fields, _REQUEST_FLAGS), ours


@settings(max_examples=500, deadline=None)
@given(st.lists(_FIELD, max_size=4))
def test_a_trailer_block_is_refused_exactly_when_h2_would_refuse_it(fields: Fields) -> None:
    ours = check_trailer_fields(fields)
    assert (ours is not None) == h2_refuses(fields, _TRAILER_FLAGS), ours
