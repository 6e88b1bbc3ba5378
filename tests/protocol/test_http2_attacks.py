"""Every known HTTP/2 attack, answered by the sans-IO core: the answer, and a bound on memory."""

from __future__ import annotations

import h2.events
import pytest
from h2.errors import ErrorCodes
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from tests.protocol.http2_helpers import REQUEST, Pair, RawClient, post
from trio_asgi._protocol._http2_events import (
    ConnectionTerminated,
    RequestReceived,
    RequestRejected,
    StreamReset,
)
from trio_asgi._protocol._http2_limits import H2Settings


def terminated(client: RawClient) -> ConnectionTerminated:
    found = [e for e in client.events if isinstance(e, ConnectionTerminated)]
    assert len(found) == 1
    return found[0]


def test_rapid_reset_ends_in_enhance_your_calm_and_cancels_each_app() -> None:
    # CVE-2023-44487: open a stream, reset it at once, again and again.
    client = RawClient(H2Settings(reset_window_streams=50, max_resets_in_window=20))
    for stream_id in range(1, 200, 2):
        client.frames(
            client.headers(stream_id, flags=("END_HEADERS",)),
            RstStreamFrame(stream_id, error_code=ErrorCodes.CANCEL),
        )
        if client.server.terminated is not None:
            break
    assert terminated(client).error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert client.goaway() is not None
    assert client.goaway().error_code == ErrorCodes.ENHANCE_YOUR_CALM
    opened = [e.stream_id for e in client.events if isinstance(e, RequestReceived)]
    cancelled = [e.stream_id for e in client.events if isinstance(e, StreamReset) and e.by_peer]
    assert cancelled == opened  # every reset stream's app is told to stop
    assert len(opened) == 21  # the 21st reset in the window is one too many
    # bounded work: nothing more is read once the connection is over
    assert client.send(client.headers(401).serialize()) == []


def test_resets_spread_over_many_streams_stay_below_the_bound() -> None:
    # One reset in ten streams, for 2,000 streams: a browser's navigation, not an attack.
    pair = Pair(H2Settings(reset_window_streams=50, max_resets_in_window=20))
    for n in range(2000):
        stream_id = pair.request(REQUEST)
        pair.exchange()
        if n % 10 == 0:
            pair.client.reset_stream(stream_id, ErrorCodes.CANCEL)
        else:
            pair.server.send_response_head(stream_id, 204, [])
        pair.exchange()
        pair.server.stream_finished(stream_id)
    assert pair.server.terminated is None
    assert len(pair.server._streams) == 0  # nothing kept per finished stream


def test_made_you_reset_counts_resets_we_send() -> None:
    # CVE-2025-8671: each stream is made to break a rule (WINDOW_UPDATE of 0 on the
    # stream), so that the server resets it: those resets count like the client's.
    client = RawClient(H2Settings(reset_window_streams=50, max_resets_in_window=20))
    for stream_id in range(1, 200, 2):
        client.frames(client.headers(stream_id, flags=("END_HEADERS",)))
        client.send(_zero_window_update(stream_id))
        if client.server.terminated is not None:
            break
    assert terminated(client).error_code == ErrorCodes.ENHANCE_YOUR_CALM
    reset_by_us = [e for e in client.events if isinstance(e, StreamReset) and not e.by_peer]
    assert len(reset_by_us) == 21
    assert set(client.resets().values()) == {ErrorCodes.PROTOCOL_ERROR}


def test_made_you_reset_through_malformed_requests() -> None:
    client = RawClient(H2Settings(reset_window_streams=50, max_resets_in_window=20))
    bad = [*REQUEST, (b"connection", b"keep-alive")]
    for stream_id in range(1, 200, 2):
        client.frames(client.headers(stream_id, bad))
        if client.server.terminated is not None:
            break
    assert terminated(client).error_code == ErrorCodes.ENHANCE_YOUR_CALM
    rejected = [e for e in client.events if isinstance(e, RequestRejected)]
    assert len(rejected) == 21
    assert not any(isinstance(e, RequestReceived) for e in client.events)


def _zero_window_update(stream_id: int) -> bytes:
    # hyperframe refuses to build an increment of 0, so the frame is written by hand.
    return b"\x00\x00\x04\x08\x00" + stream_id.to_bytes(4, "big") + b"\x00\x00\x00\x00"


def test_continuation_flood_is_cut_at_the_frame_bound() -> None:
    client = RawClient(H2Settings(max_header_block_frames=16))
    block = client.encoder.encode(REQUEST)
    client.frames(HeadersFrame(1, data=block[:1]))
    for n in range(100):
        client.now = float(n)
        client.frames(ContinuationFrame(1, data=b""))
        if client.server.terminated is not None:
            break
    assert terminated(client).error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert n == 15  # HEADERS + 15 CONTINUATION frames allowed; the 16th continuation is cut
    # the block was never handed to h2 whole: the scanner held one frame header at most
    assert client.server._scanner.buffered <= 9


def test_continuation_bytes_are_bounded_and_the_block_start_is_exposed() -> None:
    settings = H2Settings(max_header_list_size=4096, max_header_block_frames=1000)
    client = RawClient(settings)
    client.now = 5.0
    client.frames(HeadersFrame(1, data=b"\x00" * 1000))
    assert client.server.header_block_since == 5.0  # the I/O layer's deadline starts here
    client.now = 6.0
    for _ in range(20):
        client.frames(ContinuationFrame(1, data=b"\x00" * 1000))
        if client.server.terminated is not None:
            break
    assert terminated(client).error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert "too large" in terminated(client).reason
    # at most the hard bound (2 x 4096) of encoded bytes was ever accepted
    assert client.server._h2.incoming_buffer._headers_buffer is not None
    held = sum(len(f.data) for f in client.server._h2.incoming_buffer._headers_buffer)
    assert held <= settings.max_header_block_bytes


def test_header_block_since_clears_when_the_block_ends() -> None:
    client = RawClient()
    block = client.encoder.encode(REQUEST)
    client.now = 1.0
    client.frames(HeadersFrame(1, data=block[:3], flags=("END_STREAM",)))
    assert client.server.header_block_since == 1.0
    client.now = 2.0
    client.frames(ContinuationFrame(1, data=block[3:], flags=("END_HEADERS",)))
    assert client.server.header_block_since is None
    assert any(isinstance(e, RequestReceived) for e in client.events)


def test_hpack_bomb_is_stopped_while_decoding() -> None:
    # CVE-2016-6581: one large value in the dynamic table, then many one-byte
    # references to it: a few bytes on the wire, megabytes decoded.
    client = RawClient(H2Settings(max_header_list_size=8192, header_table_size=4096))
    first = client.encoder.encode([*REQUEST, (b"x-bomb", b"a" * 4000)])
    client.frames(HeadersFrame(1, data=first, flags=("END_HEADERS", "END_STREAM")))
    assert client.events[-1].__class__ is RequestReceived
    reference = client.encoder.encode([(b"x-bomb", b"a" * 4000)])
    assert len(reference) <= 2  # an index into the dynamic table
    block = client.encoder.encode(REQUEST) + reference * 4000  # 16 MB if decoded
    client.frames(HeadersFrame(3, data=block, flags=("END_HEADERS", "END_STREAM")))
    assert terminated(client).error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert client.goaway().error_code == ErrorCodes.ENHANCE_YOUR_CALM


def test_a_header_list_between_the_setting_and_the_hard_bound_gets_431() -> None:
    client = RawClient(H2Settings(max_header_list_size=4096))
    # the client has ACKed our SETTINGS, as real clients do
    client.frames(SettingsFrame(0, flags=["ACK"]))
    fields = [*REQUEST, (b"x-big", b"b" * 5000)]
    client.frames(client.headers(1, fields))
    rejected = [e for e in client.events if isinstance(e, RequestRejected)]
    assert [(e.stream_id, e.status) for e in rejected] == [(1, 431)]
    assert client.server.terminated is None
    assert not any(isinstance(e, RequestReceived) for e in client.events)


@pytest.mark.parametrize(
    ("make_frame", "budget"),
    [
        (lambda n: SettingsFrame(0), "max_settings_per_interval"),
        (lambda n: PingFrame(0, opaque_data=n.to_bytes(8, "big")), "max_pings_per_interval"),
        (lambda n: PriorityFrame(n * 2 + 1, depends_on=0), "max_priority_per_interval"),
        (lambda n: WindowUpdateFrame(0, window_increment=1), "max_window_updates_per_interval"),
    ],
    ids=["settings", "ping", "priority", "window-update"],
)
def test_control_frame_floods_end_in_goaway(make_frame, budget) -> None:
    client = RawClient(H2Settings(**{budget: 50}))
    sent = 0
    while client.server.terminated is None and sent < 10_000:
        client.frames(make_frame(sent))
        sent += 1
    # the budget counts the client's opening SETTINGS frame too
    assert sent == (50 if budget == "max_settings_per_interval" else 51)
    assert terminated(client).error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert client.goaway().error_code == ErrorCodes.ENHANCE_YOUR_CALM


def test_control_frames_within_budget_over_time_are_fine() -> None:
    client = RawClient(H2Settings(max_pings_per_interval=50, flood_interval=10.0))
    for n in range(500):
        client.now = n * 0.5  # 20 per 10 s: within budget, for a long time
        client.frames(PingFrame(0, opaque_data=n.to_bytes(8, "big")))
        client.server.data_to_send()
    assert client.server.terminated is None


def test_empty_data_flood_ends_in_goaway() -> None:
    client = RawClient(H2Settings(max_empty_data_per_interval=50))
    client.frames(client.headers(1, post(), flags=("END_HEADERS",)))
    for _ in range(100):
        client.frames(DataFrame(1, data=b""))
        if client.server.terminated is not None:
            break
    assert terminated(client).error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert "empty DATA" in terminated(client).reason


def test_a_client_that_does_not_read_our_ping_acks_is_stopped() -> None:
    # Each PING makes a 17-byte ACK; a client that never reads them grows our output.
    settings = H2Settings(
        max_pending_output=1024, max_pending_output_hard=4096, max_pings_per_interval=10**6
    )
    client = RawClient(settings)
    client.server.data_to_send()
    stopped_reading_at = None
    for n in range(10_000):
        client.server.receive_data(PingFrame(0, opaque_data=b"12345678").serialize(), 0.0)
        if stopped_reading_at is None and not client.server.wants_read:
            stopped_reading_at = n
        if client.server.terminated is not None:
            break
    assert stopped_reading_at is not None
    assert stopped_reading_at < 1024 // 17 + 1  # the I/O layer stops reading here
    assert client.server.terminated.error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert client.server.pending_output <= 4096 + 17 + 17  # bounded backlog (+ GOAWAY)


def test_window_update_overflow_on_a_stream_resets_it() -> None:
    client = RawClient()
    client.frames(client.headers(1))
    client.frames(WindowUpdateFrame(1, window_increment=2**31 - 1))
    assert client.resets() == {1: ErrorCodes.FLOW_CONTROL_ERROR}
    assert client.server.terminated is None


def test_window_update_overflow_on_the_connection_is_a_connection_error() -> None:
    client = RawClient()
    client.frames(WindowUpdateFrame(0, window_increment=2**31 - 1))
    assert terminated(client).error_code == ErrorCodes.FLOW_CONTROL_ERROR
    assert client.goaway().error_code == ErrorCodes.FLOW_CONTROL_ERROR


def test_zero_window_stall_buffers_nothing() -> None:
    pair = Pair(H2Settings(max_pending_output=65536))
    pair.client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    stream_id = pair.request(REQUEST)
    pair.exchange()
    pair.server.send_response_head(stream_id, 200, [])
    pair.server.data_to_send()
    body = b"x" * (1 << 20)
    result = pair.server.send_body(stream_id, body)
    assert result.sent == 0
    assert result.remaining == len(body)
    assert result.window_blocked
    assert pair.server.pending_output == 0  # nothing was queued for the stalled stream


def test_headers_again_on_a_half_closed_stream_is_a_stream_error() -> None:
    client = RawClient()
    client.frames(client.headers(5))
    client.frames(client.headers(5))
    # RFC 9113 section 5.1, half-closed (remote): a stream error of type STREAM_CLOSED
    assert client.resets() == {5: ErrorCodes.STREAM_CLOSED}
    assert client.server.terminated is None


def test_stream_id_reuse_after_close_is_a_connection_error() -> None:
    client = RawClient()
    client.frames(client.headers(5))
    client.server.send_response_head(5, 204, [])
    client.server.stream_finished(5)
    client.frames(client.headers(5))
    # RFC 9113 section 5.1, closed after END_STREAM: a connection error STREAM_CLOSED
    assert terminated(client).error_code == ErrorCodes.STREAM_CLOSED
    assert client.goaway().error_code == ErrorCodes.STREAM_CLOSED


def test_a_lower_stream_id_is_a_protocol_error() -> None:
    client = RawClient()
    client.frames(client.headers(7))
    client.frames(client.headers(3))
    assert terminated(client).error_code == ErrorCodes.PROTOCOL_ERROR


@pytest.mark.parametrize("bad", [b"a\rb", b"a\nb", b"a\x00b"])
def test_header_values_with_cr_lf_nul_are_malformed(bad: bytes) -> None:
    client = RawClient()
    client.frames(client.headers(1, [*REQUEST, (b"x-evil", bad)]))
    assert client.resets() == {1: ErrorCodes.PROTOCOL_ERROR}
    assert not any(isinstance(e, RequestReceived) for e in client.events)
    assert client.server.terminated is None


def test_streams_over_the_limit_are_refused_not_the_connection() -> None:
    client = RawClient(H2Settings(max_concurrent_streams=3))
    for stream_id in (1, 3, 5, 7, 9):
        client.frames(client.headers(stream_id, flags=("END_HEADERS",)))
    assert client.resets() == {7: ErrorCodes.REFUSED_STREAM, 9: ErrorCodes.REFUSED_STREAM}
    assert client.server.terminated is None
    opened = [e.stream_id for e in client.events if isinstance(e, RequestReceived)]
    assert opened == [1, 3, 5]
    # HPACK stayed in step: a later stream, once there is room, decodes fine
    client.frames(RstStreamFrame(1, error_code=ErrorCodes.CANCEL))
    client.frames(client.headers(11, [*REQUEST, (b"x-after", b"yes")]))
    last = [e for e in client.events if isinstance(e, RequestReceived)][-1]
    assert last.stream_id == 11
    assert (b"x-after", b"yes") in last.head.headers
    # DATA on a refused stream is answered, and its window handed back
    client.frames(DataFrame(7, data=b"z" * 100))
    assert client.server.terminated is None


def test_an_oversized_frame_is_refused_on_its_header() -> None:
    client = RawClient()
    header = (1 << 24) - 1
    client.send(header.to_bytes(3, "big") + b"\x00\x00\x00\x00\x00\x01")
    assert terminated(client).error_code == ErrorCodes.FRAME_SIZE_ERROR
    assert client.server._scanner.buffered == 9  # the 16 MiB payload is never awaited
