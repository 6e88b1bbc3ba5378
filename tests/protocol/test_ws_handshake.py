"""The WebSocket opening handshake, server side: upgrade detection, validation, refusals.

Requests come from a real wsproto client, parsed by h11 as the server does; bad ones
are that request with one header changed. Refusals are parsed back by an h11 client.
"""

from __future__ import annotations

import base64

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import Request
from wsproto.extensions import PerMessageDeflate

from trio_asgi import ASGIProtocolError
from trio_asgi._protocol._response import DefaultHeaders
from trio_asgi._protocol._ws_handshake import (
    DeflateOffer,
    ExtensionOffer,
    Handshake,
    HandshakeRejection,
    is_websocket_upgrade,
    render_response,
    validate_handshake,
)

Headers = list[tuple[bytes, bytes]]


def client_request(**kwargs: object) -> h11.Request:
    """A wsproto client's upgrade request, as the server's h11 parses it."""
    client = WSConnection(ConnectionType.CLIENT)
    data = client.send(Request(host="example.com", target="/chat", **kwargs))  # type: ignore[arg-type]
    server = h11.Connection(h11.SERVER)
    server.receive_data(data)
    event = server.next_event()
    assert isinstance(event, h11.Request)
    return event


def good_headers(**kwargs: object) -> Headers:
    return list(client_request(**kwargs).headers)


def replace(headers: Headers, name: bytes, *values: bytes) -> Headers:
    """``headers`` with every ``name`` line removed and one line per value added."""
    kept = [(n, v) for n, v in headers if n != name]
    return kept + [(name, v) for v in values]


def validate(headers: Headers, method: bytes = b"GET", version: bytes = b"1.1") -> object:
    return validate_handshake(method, version, headers)


def rejected(
    headers: Headers, method: bytes = b"GET", version: bytes = b"1.1"
) -> HandshakeRejection:
    result = validate(headers, method, version)
    assert isinstance(result, HandshakeRejection), result
    return result


def parse_response(data: bytes) -> tuple[h11.Response, bytes]:
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    response = client.next_event()
    assert isinstance(response, h11.Response)
    body = b""
    while isinstance(event := client.next_event(), h11.Data):
        body += event.data
    assert isinstance(event, h11.EndOfMessage)
    return response, body


# --- upgrade detection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upgrade", "connection"),
    [
        (b"websocket", b"Upgrade"),
        (b"WebSocket", b"upgrade"),
        (b"h2c, websocket", b"keep-alive, Upgrade"),
        (b" websocket ", b"UPGRADE"),
    ],
)
def test_upgrade_detected(upgrade: bytes, connection: bytes) -> None:
    assert is_websocket_upgrade([(b"upgrade", upgrade), (b"connection", connection)])


@pytest.mark.parametrize(
    "headers",
    [
        [(b"upgrade", b"websocket")],
        [(b"connection", b"upgrade")],
        [(b"upgrade", b"h2c"), (b"connection", b"upgrade")],
        [(b"upgrade", b"websockets"), (b"connection", b"upgrade")],
        [(b"upgrade", b"websocket"), (b"connection", b"upgraded, keep-alive")],
        [],
    ],
)
def test_not_an_upgrade(headers: Headers) -> None:
    assert not is_websocket_upgrade(headers)


def test_upgrade_tokens_may_be_split_over_lines() -> None:
    headers = [
        (b"connection", b"keep-alive"),
        (b"upgrade", b"websocket"),
        (b"connection", b"upgrade"),
    ]
    assert is_websocket_upgrade(headers)


# --- valid handshakes ---------------------------------------------------------------------------


def test_a_real_client_handshake_is_valid() -> None:
    request = client_request(subprotocols=["chat", "superchat"], extensions=[PerMessageDeflate()])
    result = validate_handshake(request.method, request.http_version, list(request.headers))
    assert isinstance(result, Handshake)
    key = dict(request.headers)[b"sec-websocket-key"]
    assert result.key == key
    assert result.subprotocols == ("chat", "superchat")
    assert [offer.name for offer in result.extensions] == ["permessage-deflate"]
    assert result.deflate_offers == (
        DeflateOffer(server_max_window_bits=15, client_max_window_bits=15),
    )


def test_subprotocols_from_several_lines_and_empty_elements() -> None:
    headers = replace(good_headers(), b"sec-websocket-protocol", b"chat,, x ,", b" ,v2.chat")
    result = validate(headers)
    assert isinstance(result, Handshake)
    assert result.subprotocols == ("chat", "x", "v2.chat")


def test_no_subprotocols_and_no_extensions() -> None:
    result = validate(good_headers())
    assert isinstance(result, Handshake)
    assert result.subprotocols == ()
    assert result.extensions == ()
    assert result.deflate_offers == ()


# --- refusals -----------------------------------------------------------------------------------


def test_http_10_is_refused() -> None:
    rejection = rejected(good_headers(), version=b"1.0")
    assert rejection.status == 400
    assert b"HTTP/1.1" in rejection.body


def test_only_get() -> None:
    assert rejected(good_headers(), method=b"POST").status == 400


@pytest.mark.parametrize("version", [b"12", b"8", b"", b"13, 8", b"14"])
def test_other_versions_get_426(version: bytes) -> None:
    rejection = rejected(replace(good_headers(), b"sec-websocket-version", version))
    assert rejection.status == 426
    assert rejection.reason == b"Upgrade Required"
    assert (b"sec-websocket-version", b"13") in rejection.headers


def test_missing_version_gets_426() -> None:
    assert rejected(replace(good_headers(), b"sec-websocket-version")).status == 426


@pytest.mark.parametrize(
    "key",
    [
        b"",
        b"not base64 at all!!!!!!!",
        base64.b64encode(b"x" * 15),
        base64.b64encode(b"x" * 17),
        base64.b64encode(b"x" * 16).rstrip(b"="),
        b"A" * 21 + b"===",  # 24 characters, bad padding
        b"A" * 24,  # 24 characters, but 18 bytes
        b"\xff" * 24,
        base64.b64encode(b"x" * 16)[:-3] + b"\xc3\xa9=",
    ],
)
def test_bad_keys_get_400(key: bytes) -> None:
    assert rejected(replace(good_headers(), b"sec-websocket-key", key)).status == 400


def test_missing_key_gets_400() -> None:
    assert rejected(replace(good_headers(), b"sec-websocket-key")).status == 400


@pytest.mark.parametrize("name", [b"sec-websocket-key", b"sec-websocket-version", b"host"])
def test_repeated_single_headers_get_400(name: bytes) -> None:
    headers = good_headers()
    value = dict(headers)[name]
    assert rejected([*headers, (name, value)]).body.startswith(b"repeated ")
    other = base64.b64encode(b"y" * 16) if name == b"sec-websocket-key" else b"13"
    assert rejected([*headers, (name, other)]).status == 400


@pytest.mark.parametrize("header", [(b"content-length", b"5"), (b"transfer-encoding", b"chunked")])
def test_a_handshake_with_a_body_gets_400(header: tuple[bytes, bytes]) -> None:
    assert rejected([*good_headers(), header]).body == b"a WebSocket handshake has no body\n"
    assert isinstance(validate([*good_headers(), (b"content-length", b"0")]), Handshake)


def test_missing_upgrade_tokens_get_400() -> None:
    assert rejected(replace(good_headers(), b"upgrade", b"h2c")).status == 400
    assert rejected(replace(good_headers(), b"connection", b"keep-alive")).status == 400


@pytest.mark.parametrize(
    "value",
    [
        "chat, caf\u00e9".encode(),  # non-ASCII (a peer's worker crashed on this)
        b"\xff\xfe",
        b"chat, x y",
        b"chat;q=1",
        b'"chat"',
        b"chat/1",
        b"\x00",
    ],
)
def test_malformed_subprotocols_get_400_not_an_exception(value: bytes) -> None:
    rejection = rejected(replace(good_headers(), b"sec-websocket-protocol", value))
    assert rejection.status == 400
    assert b"Sec-WebSocket-Protocol" in rejection.body


# --- extensions ---------------------------------------------------------------------------------


def extensions(*values: bytes) -> Handshake:
    result = validate(replace(good_headers(), b"sec-websocket-extensions", *values))
    assert isinstance(result, Handshake), result
    return result


def test_extension_offers_are_parsed_with_quoted_values() -> None:
    result = extensions(
        b'Permessage-Deflate; Client_Max_Window_Bits ;server_max_window_bits="10", x-foo',
        b"x-bar; a=b",
    )
    assert result.extensions == (
        ExtensionOffer(
            "permessage-deflate",
            (("client_max_window_bits", None), ("server_max_window_bits", "10")),
        ),
        ExtensionOffer("x-foo"),
        ExtensionOffer("x-bar", (("a", "b"),)),
    )
    assert result.deflate_offers == (DeflateOffer(server_max_window_bits=10),)


@pytest.mark.parametrize(
    "value",
    [
        "permessage-deflate; caf\u00e9".encode(),
        b"permessage-deflate;",
        b"; permessage-deflate",
        b"permessage-deflate; a=",
        b'permessage-deflate; a="b',
        b'permessage-deflate; a="b c"',
        b"permessage-deflate x",
        b"=x",
    ],
)
def test_malformed_extension_header_gets_400(value: bytes) -> None:
    result = validate(replace(good_headers(), b"sec-websocket-extensions", value))
    assert isinstance(result, HandshakeRejection)
    assert result.status == 400


@pytest.mark.parametrize(
    "params",
    [
        b"server_max_window_bits",  # needs a value
        b"server_max_window_bits=16",
        b"server_max_window_bits=7",
        b"server_max_window_bits=08",
        b"client_max_window_bits=x",
        b"server_no_context_takeover=1",
        b"server_no_context_takeover; server_no_context_takeover",
        b"unknown_param",
    ],
)
def test_invalid_deflate_offers_are_declined_not_refused(params: bytes) -> None:
    result = extensions(b"permessage-deflate; " + params + b", permessage-deflate")
    assert len(result.extensions) == 2
    assert result.deflate_offers == (DeflateOffer(),)  # only the second, bare offer


def test_every_deflate_parameter() -> None:
    result = extensions(
        b"permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        b"server_max_window_bits=9; client_max_window_bits=12"
    )
    assert result.deflate_offers == (
        DeflateOffer(
            server_no_context_takeover=True,
            client_no_context_takeover=True,
            server_max_window_bits=9,
            client_max_window_bits=12,
        ),
    )


TOKEN = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=8)


@given(
    st.lists(
        st.tuples(
            TOKEN,
            st.lists(st.tuples(TOKEN, st.none() | TOKEN, st.booleans()), max_size=3),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_extension_offers_round_trip(
    offers: list[tuple[str, list[tuple[str, str | None, bool]]]],
) -> None:
    parts = []
    for name, params in offers:
        text = name
        for param, value, quoted in params:
            text += f"; {param}"
            if value is not None:
                text += f'="{value}"' if quoted else f"={value}"
        parts.append(text)
    result = extensions(", ".join(parts).encode("ascii"))
    expected = tuple(
        ExtensionOffer(name, tuple((param, value) for param, value, _ in params))
        for name, params in offers
    )
    assert result.extensions == expected


HANDSHAKE_HEADERS = [
    b"upgrade",
    b"connection",
    b"host",
    b"sec-websocket-key",
    b"sec-websocket-version",
    b"sec-websocket-protocol",
    b"sec-websocket-extensions",
]


@given(
    st.lists(st.tuples(st.sampled_from(HANDSHAKE_HEADERS), st.binary(max_size=40)), max_size=6),
    st.sampled_from([b"GET", b"POST"]),
    st.sampled_from([b"1.1", b"1.0"]),
)
def test_any_header_bytes_give_an_answer_never_an_exception(
    changes: list[tuple[bytes, bytes]], method: bytes, version: bytes
) -> None:
    headers = good_headers()
    for name, value in changes:
        headers = replace(headers, name, value)
    result = validate(headers, method, version)
    assert isinstance(result, Handshake | HandshakeRejection)
    if isinstance(result, HandshakeRejection):
        response, body = parse_response(result.to_bytes())
        assert response.status_code == result.status
        assert body == result.body


# --- writing responses --------------------------------------------------------------------------


def test_rejection_is_a_complete_response_that_closes() -> None:
    rejection = rejected(replace(good_headers(), b"sec-websocket-version", b"12"))
    defaults = DefaultHeaders(server_header=True, date_header=True, extra=(("x-extra", "1"),))
    response, body = parse_response(rejection.to_bytes(defaults))
    assert response.status_code == 426
    assert response.reason == b"Upgrade Required"
    headers = dict(response.headers)
    assert headers[b"sec-websocket-version"] == b"13"
    assert headers[b"connection"] == b"close"
    assert headers[b"content-type"] == b"text/plain; charset=utf-8"
    assert headers[b"x-extra"] == b"1"
    assert b"server" in headers
    assert b"date" in headers
    assert body == rejection.body


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"x-a", b"1\r\nset-cookie: evil=1"),
        (b"x-a", b"1\nx"),
        (b"x-a", b"a\x00b"),
        (b"x a", b"1"),
        (b"x-a\r\n", b"1"),
        (b"", b"1"),
    ],
)
def test_render_refuses_header_injection(name: bytes, value: bytes) -> None:
    with pytest.raises(ASGIProtocolError):
        render_response(200, [(name, value)])


def test_render_keeps_app_header_order_and_adds_defaults_only_when_missing() -> None:
    defaults = DefaultHeaders(server_header=True, date_header=False, extra=())
    data = render_response(200, [(b"b", b"2"), (b"Server", b"mine"), (b"a", b"1\t2")], defaults)
    assert data == b"HTTP/1.1 200 OK\r\nb: 2\r\nServer: mine\r\na: 1\t2\r\n\r\n"
