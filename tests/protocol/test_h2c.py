"""Choosing HTTP/2 on a cleartext port: the preface, and Upgrade: h2c."""

from __future__ import annotations

import base64

import h2.config
import h2.connection
import h2.events
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_asgi._protocol._h2c import (
    SWITCHING_PROTOCOLS,
    H2cRefused,
    H2cUpgrade,
    Preface,
    check_h2c_upgrade,
    detect_preface,
)
from trio_asgi._protocol._http2 import H2ServerConnection
from trio_asgi._protocol._http2_events import RequestReceived
from trio_asgi._protocol._http2_frames import PREFACE


@given(st.integers(min_value=0, max_value=len(PREFACE)))
def test_any_prefix_of_the_preface_needs_more(cut: int) -> None:
    expected = Preface.HTTP2 if cut == len(PREFACE) else Preface.NEED_MORE
    assert detect_preface(PREFACE[:cut]) is expected


@given(st.binary(min_size=1, max_size=40))
def test_other_bytes_are_not_http2(data: bytes) -> None:
    verdict = detect_preface(data)
    if PREFACE.startswith(data[: len(PREFACE)]) or data.startswith(PREFACE):
        assert verdict is not Preface.NOT_HTTP2
    else:
        assert verdict is Preface.NOT_HTTP2


def test_http11_is_not_http2_from_the_first_byte() -> None:
    assert detect_preface(b"G") is Preface.NOT_HTTP2
    assert detect_preface(b"PRI * HTTP/1.1\r\n") is Preface.NOT_HTTP2
    assert detect_preface(PREFACE + b"\x00\x00") is Preface.HTTP2


def _client_settings() -> bytes:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    value = client.initiate_upgrade_connection()
    assert value is not None
    return value


def _upgrade_headers(settings: bytes, connection: bytes = b"Upgrade, HTTP2-Settings"):
    return [
        (b"host", b"a"),
        (b"connection", connection),
        (b"upgrade", b"h2c"),
        (b"http2-settings", settings),
    ]


def test_a_valid_upgrade_is_accepted() -> None:
    verdict = check_h2c_upgrade(_upgrade_headers(_client_settings()), has_body=False)
    assert isinstance(verdict, H2cUpgrade)


@pytest.mark.parametrize(
    ("headers", "has_body", "tls"),
    [
        ([(b"connection", b"Upgrade"), (b"upgrade", b"h2c")], False, False),  # no settings
        ([*_upgrade_headers(b"AAMAAABk"), (b"http2-settings", b"AAMAAABk")], False, False),
        (_upgrade_headers(b"not base64!"), False, False),
        (_upgrade_headers(b"AAMAAA"), False, False),  # 4 bytes: not a multiple of 6
        (_upgrade_headers(b"AAIAAAAC"), False, False),  # ENABLE_PUSH = 2
        (_upgrade_headers(b"AAMAAABk", b"Upgrade"), False, False),  # Connection lacks it
        (_upgrade_headers(b"AAMAAABk"), True, False),  # a body
        (_upgrade_headers(b"AAMAAABk"), False, True),  # over TLS
    ],
    ids=[
        "no-settings",
        "two-settings",
        "bad-base64",
        "bad-length",
        "bad-value",
        "connection",
        "body",
        "tls",
    ],
)
def test_invalid_upgrades_are_served_as_http11(headers, has_body, tls) -> None:
    assert isinstance(check_h2c_upgrade(headers, has_body=has_body, tls=tls), H2cRefused)


def test_no_upgrade_asked() -> None:
    assert check_h2c_upgrade([(b"upgrade", b"websocket")], has_body=False) is None


def test_the_upgraded_request_is_answered_on_stream_1() -> None:
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    settings = client.initiate_upgrade_connection()
    verdict = check_h2c_upgrade(_upgrade_headers(settings), has_body=False)
    assert isinstance(verdict, H2cUpgrade)
    server = H2ServerConnection(upgrade_settings=verdict.settings)
    assert server.in_flight == (1,)  # the HTTP/1.1 request, complete, awaiting its response
    assert SWITCHING_PROTOCOLS.startswith(b"HTTP/1.1 101 ")
    # after the 101 the client sends the preface; the server answers stream 1
    server.receive_data(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send())
    server.send_response_head(1, 200, [], end_stream=True)
    events = client.receive_data(server.data_to_send())
    assert any(isinstance(e, h2.events.ResponseReceived) and e.stream_id == 1 for e in events)
    # and new streams follow on 3
    client.send_headers(
        3,
        [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a"), (b":path", b"/")],
        end_stream=True,
    )
    new = server.receive_data(client.data_to_send(), 0.0)
    assert [e.stream_id for e in new if isinstance(e, RequestReceived)] == [3]


def test_unpadded_settings_are_padded_for_h2() -> None:
    raw = base64.urlsafe_b64encode(b"\x00\x03\x00\x00\x00\x64").rstrip(b"=")
    verdict = check_h2c_upgrade(_upgrade_headers(raw), has_body=False)
    assert isinstance(verdict, H2cUpgrade)
    H2ServerConnection(upgrade_settings=verdict.settings)  # h2 decodes it
