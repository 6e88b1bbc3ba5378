"""Properties of the HTTP/2 core under any split of the bytes and under random frames."""

from __future__ import annotations

import h2.config
import h2.connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.protocol.http2_helpers import REQUEST, post
from trio_asgi._protocol._http2 import H2ServerConnection
from trio_asgi._protocol._http2_events import ConnectionTerminated
from trio_asgi._protocol._http2_frames import PREFACE
from trio_asgi._protocol._http2_limits import H2Settings


def _client_bytes() -> bytes:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.send_headers(1, REQUEST, end_stream=True)
    client.send_headers(3, post(b"/u", (b"content-length", b"10")), end_stream=False)
    client.send_data(3, b"0123456789", end_stream=True, pad_length=7)
    client.send_headers(5, [*REQUEST, (b"cookie", b"a=1"), (b"cookie", b"b=2")])
    client.ping(b"12345678")
    return client.data_to_send()


CLIENT_BYTES = _client_bytes()


def _run(chunks: list[bytes]) -> list[object]:
    server = H2ServerConnection()
    events: list[object] = []
    for chunk in chunks:
        events += server.receive_data(chunk, 0.0)
    return events


@given(st.lists(st.integers(min_value=0, max_value=len(CLIENT_BYTES)), max_size=12))
def test_any_split_of_the_bytes_gives_the_same_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [
        CLIENT_BYTES[a:b] for a, b in zip([0, *points], [*points, len(CLIENT_BYTES)], strict=True)
    ]
    assert _run([c for c in chunks if c]) == _run([CLIENT_BYTES])


def _frame(type_: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return (
        len(payload).to_bytes(3, "big")
        + bytes([type_, flags])
        + stream_id.to_bytes(4, "big")
        + payload
    )


frames = st.builds(
    _frame,
    st.integers(min_value=0, max_value=11),
    st.integers(min_value=0, max_value=255),
    st.sampled_from([0, 1, 2, 3, 5, 7, 2**31 - 1]),
    st.binary(max_size=64),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames, max_size=40))
def test_random_frames_never_crash_and_stay_bounded(sequence: list[bytes]) -> None:
    limits = H2Settings(max_pending_output=4096, max_pending_output_hard=16384)
    server = H2ServerConnection(limits)
    server.receive_data(PREFACE + _frame(4, 0, 0, b""), 0.0)
    for data in sequence:
        events = server.receive_data(data, 0.0)
        terminated = [e for e in events if isinstance(e, ConnectionTerminated)]
        assert len(terminated) <= 1
        assert server._scanner.buffered <= limits.max_frame_size + 9
        assert server.pending_output <= limits.max_pending_output_hard + 4096
        if server.terminated is not None:
            assert server.receive_data(data, 0.0) == []
            break
