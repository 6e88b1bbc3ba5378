"""RFC 8441 in the sans-IO core: the extended-CONNECT checks, as a table, and the handshake."""

from __future__ import annotations

import pytest
from h2.errors import ErrorCodes

from trio_asgi._protocol._h2_websocket import validate_h2_handshake
from trio_asgi._protocol._http2_request import Rejection, check_connect
from trio_asgi._protocol._ws_handshake import Handshake, HandshakeRejection

FULL = {b":scheme": b"https", b":path": b"/chat", b":authority": b"a"}
PROTOCOL_ERROR = Rejection(None, ErrorCodes.PROTOCOL_ERROR, "")


@pytest.mark.parametrize(
    ("method", "pseudo", "setting", "expected"),
    [
        ("GET", FULL, True, None),
        ("CONNECT", {b":authority": b"a"}, True, Rejection(501, None, "")),
        ("CONNECT", {**FULL, b":protocol": b"websocket"}, True, None),
        ("CONNECT", {**FULL, b":protocol": b"websocket"}, False, PROTOCOL_ERROR),
        ("GET", {**FULL, b":protocol": b"websocket"}, True, PROTOCOL_ERROR),
        ("GET", {**FULL, b":protocol": b"websocket"}, False, PROTOCOL_ERROR),
        (
            "CONNECT",
            {b":protocol": b"websocket", b":path": b"/", b":authority": b"a"},
            True,
            PROTOCOL_ERROR,
        ),
        (
            "CONNECT",
            {b":protocol": b"websocket", b":scheme": b"http", b":authority": b"a"},
            True,
            PROTOCOL_ERROR,
        ),
        (
            "CONNECT",
            {b":protocol": b"websocket", b":scheme": b"http", b":path": b"/"},
            True,
            PROTOCOL_ERROR,
        ),
        ("CONNECT", {**FULL, b":protocol": b"websocket", b":path": b""}, True, PROTOCOL_ERROR),
        ("CONNECT", {**FULL, b":protocol": b"smtp"}, True, Rejection(501, None, "")),
    ],
)
def test_extended_connect_checks(
    method: str, pseudo: dict[bytes, bytes], setting: bool, expected: Rejection | None
) -> None:
    got = check_connect(method, pseudo, connect_protocol=setting)
    if expected is None:
        assert got is None
    else:
        assert got is not None
        assert (got.status, got.code) == (expected.status, expected.code)


def test_the_handshake_needs_no_key_and_reads_subprotocols_and_extensions() -> None:
    handshake = validate_h2_handshake(
        [
            (b"sec-websocket-version", b"13"),
            (b"sec-websocket-protocol", b"chat, superchat"),
            (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits"),
        ]
    )
    assert isinstance(handshake, Handshake)
    assert handshake.subprotocols == ("chat", "superchat")
    assert len(handshake.deflate_offers) == 1


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([(b"sec-websocket-version", b"8")], 426),
        ([(b"sec-websocket-version", b"13"), (b"sec-websocket-version", b"13")], 426),
        ([(b"sec-websocket-protocol", b"bad token")], 400),
    ],
)
def test_bad_handshakes_are_refused(headers: list[tuple[bytes, bytes]], status: int) -> None:
    rejection = validate_h2_handshake(headers)
    assert isinstance(rejection, HandshakeRejection)
    assert rejection.status == status
