"""Each row of ERROR_TABLE, driven by raw frames: what plain h2 answers, and what we answer.

Running the same bytes into plain h2 keeps the table honest: a row whose h2 answer
no longer matches (h2 fixed it) fails here, and the correction can go.
"""

from __future__ import annotations

from collections.abc import Callable

import h2.config
import h2.connection
import h2.exceptions
import hpack
import pytest
from h2.errors import ErrorCodes
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from tests.protocol.http2_helpers import REQUEST, parse_frames, post
from trio_asgi._protocol._http2 import H2ServerConnection
from trio_asgi._protocol._http2_errors import ERROR_TABLE
from trio_asgi._protocol._http2_frames import PREFACE
from trio_asgi._protocol._http2_limits import H2Settings


def _headers(
    fields: list[tuple[bytes, bytes]],
    stream_id: int = 1,
    end_stream: bool = True,
    encoder: hpack.Encoder | None = None,
) -> bytes:
    flags = ("END_HEADERS", "END_STREAM") if end_stream else ("END_HEADERS",)
    return HeadersFrame(
        stream_id, data=(encoder or hpack.Encoder()).encode(fields), flags=flags
    ).serialize()


def _raw_headers(block: bytes, stream_id: int = 1) -> bytes:
    return HeadersFrame(stream_id, data=block, flags=("END_HEADERS", "END_STREAM")).serialize()


def _frame(length: int, type_: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return (
        length.to_bytes(3, "big") + bytes([type_, flags]) + stream_id.to_bytes(4, "big") + payload
    )


def _open_post(extra: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
    return _headers(post(b"/u", *extra), end_stream=False)


def _too_many_streams() -> bytes:
    encoder = hpack.Encoder()
    return b"".join(_headers(REQUEST, sid, end_stream=False, encoder=encoder) for sid in (1, 3, 5))


def _self_dependency() -> bytes:
    frame = HeadersFrame(
        1, data=hpack.Encoder().encode(REQUEST), flags=("END_HEADERS", "END_STREAM", "PRIORITY")
    )
    frame.depends_on = 1
    frame.stream_weight = 16
    return frame.serialize()


def _decoded_past_the_hard_bound() -> bytes:
    # 4,000 bytes into the dynamic table on stream 1, then 10 one-byte references to
    # them on stream 3: 40 KB decoded, past the hard bound (2 x 16,384).
    encoder = hpack.Encoder()
    big = (b"x-big", b"b" * 4000)
    first = _headers([*REQUEST, big], 1, encoder=encoder)
    reference = encoder.encode([big])
    assert len(reference) == 1  # an index into the dynamic table
    block = reference * 10  # decoding stops at the bound, before any check of the fields
    return first + _raw_headers(block, 3)


#: For each ERROR_TABLE row (same order): the client bytes after the preface and SETTINGS.
SCENARIOS: list[Callable[[], bytes]] = [
    lambda: _raw_headers(b"\xbf"),  # indexed field 63: no such entry
    lambda: _raw_headers(b"\x82\x86\x84\x41\x81\x00"),  # :authority as Huffman "0" + bad padding
    lambda: _raw_headers(b"\x3f\xe1\x3f"),  # table size update to 8192 over our 4096
    lambda: _raw_headers(b"\x82\x86\x84\x40\x0a"),  # name of 10 bytes, none sent
    lambda: _frame(6, 0x4, 0x1, 0, b"\x00\x03\x00\x00\x00\x64"),  # SETTINGS ACK with a setting
    lambda: _frame(20_000, 0x0, 0x0, 1, b"\x00" * 20_000),
    lambda: _open_post() + _frame(4, 0x2, 0x0, 1, b"\x00\x00\x00\x00"),
    lambda: _open_post() + _frame(4, 0x8, 0x0, 1, b"\x00\x00\x00\x00"),
    lambda: _headers([*REQUEST, (b"X-Upper", b"1")]),
    lambda: (
        _open_post(((b"content-length", b"5"),))
        + DataFrame(1, data=b"0123456789", flags=("END_STREAM",)).serialize()
    ),
    _too_many_streams,
    _self_dependency,
    _decoded_past_the_hard_bound,
]

#: What the answer looks like in frames: "GOAWAY CODE" or "RST_STREAM CODE" (or a status).
OURS = [
    "GOAWAY COMPRESSION_ERROR",
    "GOAWAY COMPRESSION_ERROR",
    "GOAWAY COMPRESSION_ERROR",
    "GOAWAY COMPRESSION_ERROR",
    "GOAWAY FRAME_SIZE_ERROR",
    "GOAWAY FRAME_SIZE_ERROR",
    "RST_STREAM FRAME_SIZE_ERROR",
    "RST_STREAM PROTOCOL_ERROR",
    "RST_STREAM PROTOCOL_ERROR",
    "RST_STREAM PROTOCOL_ERROR",
    "RST_STREAM REFUSED_STREAM",
    "RST_STREAM PROTOCOL_ERROR",
    "GOAWAY ENHANCE_YOUR_CALM",
]
H2_ALONE = [
    "GOAWAY PROTOCOL_ERROR",
    "GOAWAY PROTOCOL_ERROR",
    "GOAWAY PROTOCOL_ERROR",
    "GOAWAY PROTOCOL_ERROR",
    "GOAWAY PROTOCOL_ERROR",
    "GOAWAY FRAME_SIZE_ERROR",
    "GOAWAY FRAME_SIZE_ERROR",
    "GOAWAY PROTOCOL_ERROR",
    "GOAWAY PROTOCOL_ERROR",
    "GOAWAY PROTOCOL_ERROR",
    "GOAWAY PROTOCOL_ERROR",
    "GOAWAY PROTOCOL_ERROR",
    "GOAWAY ENHANCE_YOUR_CALM",
]

_SETTINGS = H2Settings(max_concurrent_streams=2, max_header_list_size=16384)


def _answer(frames: list[Frame]) -> str:
    for frame in frames:
        if isinstance(frame, GoAwayFrame):
            return f"GOAWAY {ErrorCodes(frame.error_code).name}"
        if isinstance(frame, RstStreamFrame):
            return f"RST_STREAM {ErrorCodes(frame.error_code).name}"
    return "nothing"


def ours(data: bytes) -> str:
    server = H2ServerConnection(_SETTINGS)
    server.receive_data(PREFACE + SettingsFrame(0).serialize(), 0.0)
    server.data_to_send()
    server.receive_data(data, 0.0)
    return _answer(parse_frames(server.data_to_send()))


def h2_alone(data: bytes) -> str:
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    server.local_settings = h2.settings.Settings(
        client=False,
        initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 16384,
        },
    )
    server.initiate_connection()
    server.receive_data(PREFACE + SettingsFrame(0).serialize())
    server.data_to_send()
    server.decoder.max_header_list_size = 32768  # as ours: the hard bound
    try:
        server.receive_data(data)
    except h2.exceptions.ProtocolError:
        pass
    return _answer(parse_frames(server.data_to_send()))


def test_the_table_and_the_scenarios_line_up() -> None:
    assert len(ERROR_TABLE) == len(SCENARIOS) == len(OURS) == len(H2_ALONE)
    for row, expected in zip(ERROR_TABLE, OURS, strict=True):
        assert expected in row.ours


@pytest.mark.parametrize("index", range(len(ERROR_TABLE)), ids=[row.trigger for row in ERROR_TABLE])
def test_each_row_is_answered_as_the_rfc_requires(index: int) -> None:
    data = SCENARIOS[index]()
    assert ours(data) == OURS[index]
    assert h2_alone(data) == H2_ALONE[index]


def test_a_stream_error_leaves_the_connection_serving() -> None:
    # After a malformed request is reset, the next stream on the connection is served.
    encoder = hpack.Encoder()
    server = H2ServerConnection()
    server.receive_data(PREFACE + SettingsFrame(0).serialize(), 0.0)
    bad = _headers([*REQUEST, (b"te", b"gzip")], 1, encoder=encoder)
    good = _headers(REQUEST, 3, encoder=encoder)
    events = server.receive_data(bad + good, 0.0)
    assert [type(e).__name__ for e in events] == ["RequestRejected", "RequestReceived"]
    assert server.terminated is None


def test_content_length_short_of_the_data_resets_the_stream() -> None:
    server = H2ServerConnection()
    server.receive_data(PREFACE + SettingsFrame(0).serialize(), 0.0)
    server.data_to_send()
    events = server.receive_data(
        _open_post(((b"content-length", b"5"),))
        + DataFrame(1, data=b"012", flags=("END_STREAM",)).serialize(),
        0.0,
    )
    names = [type(e).__name__ for e in events]
    assert names == ["RequestReceived", "StreamReset"]  # the short body never reaches the app
    assert _answer(parse_frames(server.data_to_send())) == "RST_STREAM PROTOCOL_ERROR"
    # the reset stream's unread body went back to the connection window
    assert server._h2._inbound_flow_control_window_manager.current_window_size > 0


def test_window_update_frame_helper_is_sane() -> None:
    assert WindowUpdateFrame(0, window_increment=1).serialize()[3] == 0x8


def test_the_explanation_page_shows_every_row() -> None:
    from pathlib import Path

    page = (Path(__file__).parents[2] / "docs" / "explanation" / "http2.rst").read_text()
    for row in ERROR_TABLE:
        for cell in (row.trigger, row.rfc, row.required, row.h2_answer, row.ours):
            assert f"- {cell}\n" in page, cell
