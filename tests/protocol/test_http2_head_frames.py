"""Our HEADERS frames for a final response head are h2's, byte for byte and state for state.

Two server connections (as ``_http2._new_h2`` makes them) receive the same client
bytes; for each head one sends with :func:`response_head_frames`, the other with h2's
own ``send_headers``. The bytes written, the error raised, and every stream's and
the connection's state afterwards must be equal, over generated sequences of
requests (ended or not), client resets, heads with and without END_STREAM, heads
too large for one frame (CONTINUATION), and heads sent twice.
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import pytest
from hyperframe.frame import Frame
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.protocol.http2_helpers import REQUEST, Pair
from trio_asgi._protocol._http2 import _new_h2
from trio_asgi._protocol._http2_head_frames import response_head_frames
from trio_asgi._protocol._http2_limits import H2Settings

fields = st.lists(
    st.sampled_from(
        [
            (b"content-type", b"text/plain"),
            (b"content-length", b"2"),
            (b"x-big", b"v" * 17000),  # over the 16 KiB frame size: CONTINUATION
            (b"x-n", b"1"),
        ]
    ),
    max_size=3,
).map(lambda rest: [(b":status", b"200"), *rest])

step = st.one_of(
    st.tuples(st.just("request"), st.booleans()),
    st.tuples(st.just("reset"), st.integers(0, 9)),
    st.tuples(st.just("head"), st.integers(0, 9), fields, st.booleans()),
)


def _state(conn: h2.connection.H2Connection) -> Any:
    streams = {
        sid: (s.state_machine.state, s.state_machine.stream_closed_by, s.request_method)
        for sid, s in conn.streams.items()
    }
    return conn.state_machine.state, streams, conn.encoder.header_table.dynamic_entries


def _send(conn: h2.connection.H2Connection, call: Any, *args: Any) -> tuple[str, Any]:
    """What ``call(*args)`` wrote (or raised), and the events it returned."""
    try:
        result = call(*args)
    except Exception as exc:
        return "error", (type(exc), str(exc))
    if isinstance(result, list):  # receive_data's events
        return "ok", (conn.data_to_send(), [type(event) for event in result])
    return "ok", conn.data_to_send() + (result or b"")  # h2's send_headers returns None


@settings(max_examples=200, deadline=None)
@given(st.lists(step, max_size=25))
def test_head_frames_equal_h2s(steps: list[Any]) -> None:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    ours, theirs = _new_h2(H2Settings()), _new_h2(H2Settings())
    for conn in (ours, theirs):
        conn.initiate_connection()
    opened: list[int] = []
    for item in steps:
        if item[0] == "request":
            sid = client.get_next_available_stream_id()
            client.send_headers(sid, REQUEST, end_stream=item[1])
            opened.append(sid)
        elif item[0] == "reset" and opened:
            sid = opened[item[1] % len(opened)]
            if not client.streams.get(sid) or client.streams[sid].closed:
                continue
            client.reset_stream(sid)
        elif item[0] == "head" and opened:
            sid, head, end = opened[item[1] % len(opened)], item[2], item[3]
            mine = _send(ours, response_head_frames, ours, sid, head, end)
            h2s = _send(theirs, theirs.send_headers, sid, head, end)
            assert mine == h2s
            assert _state(ours) == _state(theirs)
            continue
        data = client.data_to_send()
        assert _send(ours, ours.receive_data, data) == _send(theirs, theirs.receive_data, data)


def test_an_unknown_stream_is_left_to_h2() -> None:
    ours, theirs = _new_h2(H2Settings()), _new_h2(H2Settings())
    head = [(b":status", b"200")]
    for sid in (3, 2):
        mine = _send(ours, response_head_frames, ours, sid, head, True)
        assert mine == _send(theirs, theirs.send_headers, sid, head, True)
        assert _state(ours) == _state(theirs)


def test_the_server_core_sends_heads_without_h2s_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client reads every head the core sends on the fast path, CONTINUATION too, and
    sending a head builds no hyperframe object (what made h2's send_headers costly)."""
    built: list[object] = []
    real_init = Frame.__init__

    def counted_init(self: Frame, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        real_init(self, *args, **kwargs)

    pair = Pair()
    for extra in ([], [(b"x-big", b"v" * 40000)]):
        stream_id = pair.request(REQUEST)
        pair.exchange()
        with monkeypatch.context() as patch:
            patch.setattr(Frame, "__init__", counted_init)
            pair.server.send_response_head(stream_id, 200, [(b"x-a", b"1"), *extra])
        assert built == []
        pair.server.send_body(stream_id, b"hi", end_stream=True)
        pair.exchange()
    heads = [e for e in pair.client_events if type(e).__name__ == "ResponseReceived"]
    assert [dict(e.headers)[b"x-a"] for e in heads] == [b"1", b"1"]
    assert dict(heads[1].headers)[b"x-big"] == b"v" * 40000
    assert sum(type(e).__name__ == "StreamEnded" for e in pair.client_events) == 2
