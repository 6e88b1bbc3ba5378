"""h2's events, turned into ours: what a stream's ASGI cycle and the I/O layer act on.

One method per h2 event type, looked up in a table; h2 events we have no use for
(settings acknowledged, priority, unknown frames) are dropped here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import h2.errors
import h2.events
import h2.settings

from ._http2_errors import LocalReset, PeerGoAway
from ._http2_events import (
    BodyEnded,
    BodyReceived,
    ConnectionTerminated,
    H2Event,
    RequestReceived,
    RequestRejected,
    ShutdownComplete,
    WindowOpened,
)
from ._http2_limits import SHUTDOWN_PING
from ._http2_request import (
    Rejection,
    RequestRules,
    shared_request_head_memo,
    trailer_fields,
)
from ._http2_streams import Stream, StreamInput, StreamState


class StreamTable(Protocol):
    """What the translator needs of the connection (so that neither imports the other)."""

    @property
    def rules(self) -> RequestRules: ...
    def stream(self, stream_id: int) -> Stream | None: ...
    def open_stream(self, stream_id: int, end_stream: bool, head_request: bool) -> Stream: ...
    def admit_new_stream(self, stream_id: int) -> bool: ...
    def refuse(
        self,
        stream_id: int,
        status: int | None,
        code: h2.errors.ErrorCodes | None,
        *,
        request_ended: bool,
    ) -> None: ...
    def acknowledge(self, stream_id: int, flow_controlled: int) -> None: ...
    def reset_malformed(self, stream_id: int, reason: str, events: list[H2Event]) -> None: ...
    def note_local_reset(self, reset: LocalReset, events: list[H2Event]) -> None: ...
    def note_peer_reset(
        self, stream_id: int, error_code: h2.errors.ErrorCodes | int, events: list[H2Event]
    ) -> None: ...
    def count_reset(self, stream_id: int, events: list[H2Event]) -> None: ...
    def peer_goaway(self, goaway: PeerGoAway) -> ConnectionTerminated: ...
    def shutdown_ping_acked(self) -> ShutdownComplete | None: ...


_Handler = Callable[["H2EventTranslator", Any, list[H2Event]], None]


class H2EventTranslator:
    """Turns each h2 event into zero or more of ours, updating the connection's streams."""

    __slots__ = ("_conn", "_heads")

    def __init__(self, conn: StreamTable) -> None:
        self._conn = conn
        self._heads = shared_request_head_memo(conn.rules)

    def translate(self, event: object, out: list[H2Event]) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event, out)

    def _request(self, event: h2.events.RequestReceived, out: list[H2Event]) -> None:
        conn, stream_id = self._conn, event.stream_id
        assert stream_id is not None
        assert event.headers is not None
        ended = event.stream_ended is not None
        if not conn.admit_new_stream(stream_id):
            conn.refuse(stream_id, None, h2.errors.ErrorCodes.REFUSED_STREAM, request_ended=ended)
            out.append(
                RequestRejected(
                    stream_id, None, h2.errors.ErrorCodes.REFUSED_STREAM, "stream after our GOAWAY"
                )
            )
            return
        head = self._heads.parse(event.headers)
        if isinstance(head, Rejection):
            conn.refuse(stream_id, head.status, head.code, request_ended=ended)
            out.append(RequestRejected(stream_id, head.status, head.code, head.reason))
            if head.code is not None:
                conn.count_reset(stream_id, out)
            return
        conn.open_stream(stream_id, ended, head_request=head.method == "HEAD")
        out.append(RequestReceived(stream_id, head, end_stream=ended))

    def _data(self, event: h2.events.DataReceived, out: list[H2Event]) -> None:
        conn, stream_id = self._conn, event.stream_id
        assert stream_id is not None
        assert event.data is not None
        length = len(event.data)
        padding = (event.flow_controlled_length or 0) - length
        stream = conn.stream(stream_id)
        if stream is None or stream.state is StreamState.RESET:
            conn.acknowledge(stream_id, padding + length)  # nobody will read it
            return
        conn.acknowledge(stream_id, padding)
        stream.apply(StreamInput.RECV_BODY)
        if length:
            stream.unread += length
            out.append(BodyReceived(stream_id, event.data))

    def _trailers(self, event: h2.events.TrailersReceived, out: list[H2Event]) -> None:
        assert event.stream_id is not None
        assert event.headers is not None
        stream = self._conn.stream(event.stream_id)
        if stream is None or stream.state is StreamState.RESET:
            return
        fields = [(bytes(name), bytes(value)) for name, value in event.headers]
        trailers = trailer_fields(fields)
        if isinstance(trailers, str):  # malformed (RFC 9113 section 8.1.1): a stream error
            self._conn.reset_malformed(event.stream_id, trailers, out)
        else:
            stream.trailers = tuple(trailers)

    def _ended(self, event: h2.events.StreamEnded, out: list[H2Event]) -> None:
        assert event.stream_id is not None
        stream = self._conn.stream(event.stream_id)
        if stream is None or stream.state in (StreamState.RESET, StreamState.REQUEST_DONE):
            return  # refused, reset, or a request whose HEADERS already ended it
        stream.apply(StreamInput.RECV_END)
        out.append(BodyEnded(event.stream_id, stream.trailers))

    def _reset(self, event: h2.events.StreamReset, out: list[H2Event]) -> None:
        assert event.stream_id is not None
        if event.remote_reset:
            self._conn.note_peer_reset(event.stream_id, event.error_code or 0, out)
        else:
            # h2 reset it itself: a stream window overflow, a frame on a closed stream.
            reset = LocalReset(event.stream_id, _code(event.error_code), "reset by h2")
            self._conn.note_local_reset(reset, out)

    def _local_reset(self, event: LocalReset, out: list[H2Event]) -> None:
        self._conn.note_local_reset(event, out)

    def _window(self, event: h2.events.WindowUpdated, out: list[H2Event]) -> None:
        out.append(WindowOpened(event.stream_id or None))

    def _settings(self, event: h2.events.RemoteSettingsChanged, out: list[H2Event]) -> None:
        if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
            out.append(WindowOpened(None))

    def _goaway(self, event: PeerGoAway, out: list[H2Event]) -> None:
        out.append(self._conn.peer_goaway(event))

    def _ping_ack(self, event: h2.events.PingAckReceived, out: list[H2Event]) -> None:
        if event.ping_data == SHUTDOWN_PING:
            done = self._conn.shutdown_ping_acked()
            if done is not None:
                out.append(done)


def _code(value: int | None) -> h2.errors.ErrorCodes:
    try:
        return h2.errors.ErrorCodes(value or 0)
    except ValueError:
        return h2.errors.ErrorCodes.INTERNAL_ERROR


_HANDLERS: dict[type, _Handler] = {
    h2.events.RequestReceived: H2EventTranslator._request,
    h2.events.DataReceived: H2EventTranslator._data,
    h2.events.TrailersReceived: H2EventTranslator._trailers,
    h2.events.StreamEnded: H2EventTranslator._ended,
    h2.events.StreamReset: H2EventTranslator._reset,
    h2.events.WindowUpdated: H2EventTranslator._window,
    h2.events.RemoteSettingsChanged: H2EventTranslator._settings,
    h2.events.PingAckReceived: H2EventTranslator._ping_ack,
    LocalReset: H2EventTranslator._local_reset,
    PeerGoAway: H2EventTranslator._goaway,
}
