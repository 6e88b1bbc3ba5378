"""Flow control as backpressure, both ways, and the two-step graceful GOAWAY."""

from __future__ import annotations

import h2.events
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame, PingFrame

from tests.protocol.http2_helpers import REQUEST, Pair, RawClient, post
from trio_asgi._protocol._http2_events import (
    BodyReceived,
    RequestReceived,
    ShutdownComplete,
    WindowOpened,
)
from trio_asgi._protocol._http2_limits import MAX_STREAM_ID, H2Settings

WINDOW = 65535


def upload(pair: Pair, stream_id: int, total: int) -> int:
    """Send as much as the client may; how many bytes went."""
    sent = 0
    while sent < total:
        room = min(
            pair.client.local_flow_control_window(stream_id),
            total - sent,
            pair.client.max_outbound_frame_size,
        )
        if room <= 0:
            break
        pair.client.send_data(stream_id, b"u" * room)
        sent += room
    return sent


def test_the_window_reopens_only_when_the_app_has_read() -> None:
    pair = Pair(H2Settings(initial_window_size=WINDOW, connection_window_size=10 * WINDOW))
    stream_id = pair.request(post(), end_stream=False)
    pair.exchange()
    assert upload(pair, stream_id, 10 * WINDOW) == WINDOW
    events = pair.exchange()
    assert sum(len(e.data) for e in events if isinstance(e, BodyReceived)) == WINDOW
    # nobody read it: the client may send nothing more, however long it waits
    assert upload(pair, stream_id, 10 * WINDOW) == 0
    assert pair.server._streams[stream_id].unread == WINDOW
    # the app reads half of it: that much window comes back, no more
    pair.server.body_consumed(stream_id, WINDOW // 2 + 1)
    pair.exchange()
    assert upload(pair, stream_id, 10 * WINDOW) == WINDOW // 2 + 1


def test_unread_body_over_all_streams_is_bounded_by_the_connection_window() -> None:
    settings = H2Settings(
        initial_window_size=WINDOW, connection_window_size=3 * WINDOW, max_concurrent_streams=10
    )
    pair = Pair(settings)
    total = 0
    for _ in range(10):
        stream_id = pair.request(post(), end_stream=False)
        pair.exchange()
        total += upload(pair, stream_id, WINDOW)
        pair.exchange()
    assert total == 3 * WINDOW
    unread = sum(stream.unread for stream in pair.server._streams.values())
    assert unread == 3 * WINDOW


def test_padding_is_handed_back_at_once() -> None:
    pair = Pair(H2Settings(initial_window_size=WINDOW))
    stream_id = pair.request(post(), end_stream=False)
    pair.exchange()
    for _ in range(200):
        pair.client.send_data(stream_id, b"abc", pad_length=250)  # 254 flow-controlled
    pair.exchange()
    # the app read nothing: only its 600 body bytes hold window; the padding came back
    assert pair.server._streams[stream_id].unread == 600
    # (h2 batches WINDOW_UPDATEs until half a window is owed; without the padding
    # returned, the client would be left 65,535 - 50,800 = 14,735)
    assert pair.client.local_flow_control_window(stream_id) > WINDOW - 600 - WINDOW // 2


def test_send_body_stops_at_the_window_and_a_window_update_reopens_it() -> None:
    pair = Pair()
    stream_id = pair.request(REQUEST)
    pair.exchange()
    pair.server.send_response_head(stream_id, 200, [])
    body = b"d" * (WINDOW + 1000)
    result = pair.server.send_body(stream_id, body)
    assert result.sent == WINDOW
    assert result.remaining == 1000
    assert result.window_blocked
    events = pair.to_client()
    received = sum(len(e.data) for e in events if isinstance(e, h2.events.DataReceived))
    assert received == WINDOW
    pair.client.acknowledge_received_data(received, stream_id)
    opened = [e for e in pair.exchange() if isinstance(e, WindowOpened)]
    assert WindowOpened(stream_id) in opened or WindowOpened(None) in opened
    rest = pair.server.send_body(stream_id, body[result.sent :], end_stream=True)
    assert rest.remaining == 0
    assert pair.server.in_flight == ()


def test_send_body_stops_at_the_output_bound() -> None:
    pair = Pair(H2Settings(max_pending_output=20_000))
    pair.client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**20})
    pair.client.increment_flow_control_window(2**20)
    stream_id = pair.request(REQUEST)
    pair.exchange()
    pair.server.send_response_head(stream_id, 200, [])
    result = pair.server.send_body(stream_id, b"o" * 100_000)
    assert not result.window_blocked  # not the window: the writer must drain first
    assert 0 < result.sent < 20_000
    assert pair.server.pending_output <= 20_000 + 9 * 2
    pair.server.data_to_send()
    assert pair.server.send_body(stream_id, b"o" * result.remaining).sent > 0


def test_graceful_shutdown_is_two_goaways_around_a_ping() -> None:
    client = RawClient()
    client.frames(client.headers(1))
    client.server.data_to_send()
    client.received.clear()
    client.server.start_shutdown()
    client.received += client.server.data_to_send()
    frames = client.sent_frames()
    assert isinstance(frames[0], GoAwayFrame)
    assert frames[0].last_stream_id == MAX_STREAM_ID
    assert isinstance(frames[1], PingFrame)
    # a stream the client opened before it saw the first GOAWAY is still served
    client.frames(client.headers(3))
    assert [e.stream_id for e in client.events if isinstance(e, RequestReceived)] == [1, 3]
    client.received.clear()
    events = client.frames(PingFrame(0, opaque_data=frames[1].opaque_data, flags=["ACK"]))
    (done,) = [e for e in events if isinstance(e, ShutdownComplete)]
    assert done.last_stream_id == 3
    assert done.in_flight == (1, 3)
    assert client.goaway().last_stream_id == 3
    assert client.goaway().error_code == ErrorCodes.NO_ERROR
    # streams after the final GOAWAY are refused; in-flight ones still finish
    client.frames(client.headers(5))
    assert client.resets() == {5: ErrorCodes.REFUSED_STREAM}
    client.server.send_response_head(1, 204, [])
    client.server.send_response_head(3, 204, [])
    assert client.server.in_flight == ()


def test_finish_shutdown_without_waiting_for_the_ping() -> None:
    client = RawClient()
    client.frames(client.headers(1))
    client.server.start_shutdown()
    done = client.server.finish_shutdown()
    client.received += client.server.data_to_send()
    assert done.last_stream_id == 1
    goaways = [f for f in client.sent_frames() if isinstance(f, GoAwayFrame)]
    assert [g.last_stream_id for g in goaways] == [MAX_STREAM_ID, 1]
