"""The sans-IO HTTP/2 server connection: bytes in, stream events out; responses in, bytes out.

Theory of operation
-------------------
h2 does the framing, HPACK and RFC 9113's stream states; the I/O layer never
touches it. Around it:

* :class:`~._http2_frames.FrameScanner` sees every frame header before h2 holds the
  payload: frame sizes, header-block frames and bytes, control-frame budgets.
* :class:`~._http2_errors.ServerH2Connection` (h2 with one override) answers the
  error paths h2 gets wrong, refuses streams over the limit with REFUSED_STREAM, and
  keeps a received GOAWAY from closing in-flight streams.
* Request heads are checked by :mod:`._http2_request`; each stream's ASGI-facing
  lifecycle is the table in :mod:`._http2_streams`.
* Receive flow control is backpressure: a stream's window reopens only when the
  caller says the app has read the bytes (:meth:`H2ServerConnection.body_consumed`).
  Send flow control is :meth:`H2ServerConnection.send_body`: it sends what the
  windows and the output bound allow and says how much is left.

The caller passes ``now`` (any monotonic clock, in seconds) to
:meth:`~H2ServerConnection.receive_data`; the core has no clock of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hyperframe.frame import GoAwayFrame

from ._hpack_memo import MemoDecoder, MemoEncoder
from ._http2_errors import LocalReset, PeerGoAway, ServerH2Connection
from ._http2_events import (
    ConnectionTerminated,
    H2Event,
    RequestRejected,
    ShutdownComplete,
    StreamReset,
)
from ._http2_frames import (
    FLAG_ACK,
    FLAG_END_STREAM,
    FrameScanner,
    FrameType,
    GoAway,
    StreamError,
    data_payload_length,
)
from ._http2_frames import Frame as ScannedFrame
from ._http2_head_frames import response_head_frames
from ._http2_limits import (
    MAX_STREAM_ID,
    SHUTDOWN_PING,
    Flood,
    FloodCounter,
    H2Settings,
    ResetTracker,
)
from ._http2_receive import H2EventTranslator
from ._http2_request import RequestRules
from ._http2_response import (
    H2ResponseError,
    checked_response_fields,
    checked_response_head,
    shared_response_head_memo,
)
from ._http2_streams import Stream, StreamInput, StreamState, next_state

_NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(frozen=True, slots=True)
class SendResult:
    """What :meth:`H2ServerConnection.send_body` did.

    ``remaining`` bytes were not sent; when non-zero, wait for a :class:`WindowOpened`
    for this stream or the connection (``window_blocked``), or for the writer to drain
    ``data_to_send()`` (not ``window_blocked``), then call again with the rest.
    """

    sent: int
    remaining: int
    window_blocked: bool


class H2ServerConnection:
    """One server-side HTTP/2 connection, doing no I/O."""

    def __init__(
        self,
        settings: H2Settings | None = None,
        *,
        scheme: str = "http",
        max_header_count: int = 100,
        upgrade_settings: bytes | None = None,
    ) -> None:
        """``upgrade_settings``: the ``HTTP2-Settings`` value of an h2c upgrade
        (:func:`._h2c.check_h2c_upgrade`); the upgraded request is then stream 1."""
        self.settings = settings = settings or H2Settings()
        self._h2 = _new_h2(settings)
        self._scanner = FrameScanner(settings, expect_preface=True)
        self._floods = FloodCounter(settings)
        self._resets = ResetTracker(settings)
        self._streams: dict[int, Stream] = {}
        self._out = bytearray()
        self._rules = RequestRules(
            scheme=scheme,
            max_header_list_size=settings.max_header_list_size,
            max_header_count=max_header_count,
            connect_protocol=settings.enable_connect_protocol,
        )
        self._translator = H2EventTranslator(self)
        #: :func:`checked_response_head`, remembered for the connections of a server.
        self.response_heads = shared_response_head_memo(self._rules)
        #: Streams with a higher id than this are refused (set by the final GOAWAY).
        self._accept_up_to = MAX_STREAM_ID
        self._shutdown_started = False
        self._shutdown_done = False
        self._peer_goaway = False
        #: Set once the connection is over: nothing more is read, only written.
        self.terminated: ConnectionTerminated | None = None
        if upgrade_settings is not None:
            self._h2.initiate_upgrade_connection(upgrade_settings)
            self._streams[1] = Stream(1, state=StreamState.REQUEST_DONE)
            self._resets.stream_opened(1)
        else:
            self._h2.initiate_connection()
        if settings.connection_window_size > 65535:
            self._h2.increment_flow_control_window(settings.connection_window_size - 65535)
        self._pull_output()

    # --- state the I/O layer reads ----------------------------------------------------------

    @property
    def wants_read(self) -> bool:
        """False while our unsent output is over the bound: stop reading until it drains."""
        return self.terminated is None and len(self._out) < self.settings.max_pending_output

    @property
    def header_block_since(self) -> float | None:
        """``now`` when a still-open header block began (the request-head deadline's start)."""
        return self._scanner.header_block_since

    @property
    def in_flight(self) -> tuple[int, ...]:
        """Streams whose request or response is not finished (shutdown waits for them)."""
        return tuple(sid for sid, stream in self._streams.items() if stream.in_flight)

    @property
    def pending_output(self) -> int:
        return len(self._out)

    def data_to_send(self) -> bytes:
        """Everything to write, in order; the one writer task drains it."""
        self._pull_output()
        data = bytes(self._out)
        self._out.clear()
        return data

    # --- input ---------------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[H2Event]:
        """Bytes read from the client (``b""``: it closed its side), and the events they make."""
        if self.terminated is not None:
            return []
        if not data:
            return [
                self._terminate(
                    ErrorCodes.NO_ERROR,
                    "client closed the connection",
                    by_peer=True,
                    graceful=False,
                    send_goaway=False,
                )
            ]
        self._scanner.feed(data)
        events: list[H2Event] = []
        preface = self._scanner.take_preface()
        if isinstance(preface, GoAway):
            return [self._terminate(preface.code, preface.reason)]
        if preface is None:
            return events
        if preface:
            self._feed_h2(preface, events)
        while self.terminated is None:
            scanned = self._scanner.next_frame(now)
            if scanned is None:
                break
            if isinstance(scanned, GoAway):
                events.append(self._terminate(scanned.code, scanned.reason))
            elif isinstance(scanned, StreamError):
                self._stream_error(scanned, events)
            elif not self._over_budget(scanned, now, events):
                self._feed_h2(scanned.raw, events)
                self._check_output_backlog(events)
        self._pull_output()
        return events

    def _feed_h2(self, raw: bytes, events: list[H2Event]) -> None:
        try:
            h2_events = self._h2.receive_data(raw)
        except h2.exceptions.ProtocolError as exc:
            # h2 queued a GOAWAY with exc.error_code already (corrected by our override).
            events.append(self._terminate(exc.error_code, str(exc), send_goaway=False))
            return
        for h2_event in h2_events:
            self._translator.translate(h2_event, events)
            if self.terminated is not None:
                return

    def _over_budget(self, frame: ScannedFrame, now: float, events: list[H2Event]) -> bool:
        kind = _flood_kind(frame)
        if kind is None or not self._floods.count(kind, now):
            return False
        events.append(self._terminate(ErrorCodes.ENHANCE_YOUR_CALM, f"{kind.value} flood"))
        return True

    def _check_output_backlog(self, events: list[H2Event]) -> None:
        self._pull_output()
        if len(self._out) > self.settings.max_pending_output_hard:
            reason = "client does not read our answers to its control frames"
            events.append(self._terminate(ErrorCodes.ENHANCE_YOUR_CALM, reason))

    def _stream_error(self, error: StreamError, events: list[H2Event]) -> None:
        stream_id = error.header.stream_id
        if stream_id in self._h2.streams and not self._h2.streams[stream_id].closed:
            self._h2.reset_stream(stream_id, error.code)
            self.note_local_reset(LocalReset(stream_id, error.code, error.reason), events)
        # else: a PRIORITY for an idle or closed stream; RST_STREAM on an idle stream
        # is itself a protocol error, and PRIORITY is advisory: dropped.

    # --- called back by the translator ------------------------------------------------------

    def stream(self, stream_id: int) -> Stream | None:
        return self._streams.get(stream_id)

    def open_stream(self, stream_id: int, end_stream: bool, head_request: bool) -> Stream:
        state = StreamState.REQUEST_DONE if end_stream else StreamState.RECEIVING
        stream = Stream(stream_id, state=state, head_request=head_request)
        self._streams[stream_id] = stream
        return stream

    def admit_new_stream(self, stream_id: int) -> bool:
        """Count a stream the client opened; whether to serve it (not after a GOAWAY)."""
        self._resets.stream_opened(stream_id)
        return stream_id <= self._accept_up_to and not self._peer_goaway

    @property
    def rules(self) -> RequestRules:
        return self._rules

    def refuse(
        self, stream_id: int, status: int | None, code: ErrorCodes | None, *, request_ended: bool
    ) -> None:
        """Answer a request that never reaches the app: a bodiless status, or a reset."""
        if status is not None:
            fields = [(b":status", str(status).encode()), (b"content-length", b"0")]
            self._h2.send_headers(stream_id, fields, end_stream=True)
            if not request_ended:
                # RFC 9113 section 8.1: a complete response, then stop the upload.
                self._h2.reset_stream(stream_id, ErrorCodes.NO_ERROR)
        else:
            self._h2.reset_stream(stream_id, code or ErrorCodes.PROTOCOL_ERROR)

    def acknowledge(self, stream_id: int, flow_controlled: int) -> None:
        """Return window for bytes nobody will read (padding, refused or reset streams)."""
        if flow_controlled:
            self._h2.acknowledge_received_data(flow_controlled, stream_id)

    def reset_malformed(self, stream_id: int, reason: str, events: list[H2Event]) -> None:
        """Reset an open stream whose frames broke RFC 9113's rules (PROTOCOL_ERROR)."""
        self._h2.reset_stream(stream_id, ErrorCodes.PROTOCOL_ERROR)
        self.note_local_reset(LocalReset(stream_id, ErrorCodes.PROTOCOL_ERROR, reason), events)

    def note_local_reset(self, reset: LocalReset, events: list[H2Event]) -> None:
        stream = self._streams.get(reset.stream_id)
        if stream is None or stream.state is StreamState.CLOSED:
            events.append(RequestRejected(reset.stream_id, None, reset.error_code, reset.reason))
        else:
            self._mark_reset(stream)
            events.append(StreamReset(reset.stream_id, reset.error_code, by_peer=False))
        self.count_reset(reset.stream_id, events)

    def note_peer_reset(
        self, stream_id: int, error_code: ErrorCodes | int, events: list[H2Event]
    ) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None and stream.state not in (StreamState.CLOSED, StreamState.RESET):
            self._mark_reset(stream)
            events.append(StreamReset(stream_id, error_code, by_peer=True))
        self.count_reset(stream_id, events)

    def count_reset(self, stream_id: int, events: list[H2Event]) -> None:
        if self._resets.stream_reset(stream_id) and self.terminated is None:
            reason = f"{self._resets.resets} resets among recent streams (rapid reset)"
            events.append(self._terminate(ErrorCodes.ENHANCE_YOUR_CALM, reason))

    def peer_goaway(self, goaway: PeerGoAway) -> ConnectionTerminated:
        self._peer_goaway = True
        graceful = goaway.error_code == ErrorCodes.NO_ERROR
        event = ConnectionTerminated(
            goaway.error_code, True, goaway.last_stream_id, self.in_flight, graceful=graceful
        )
        if not graceful:
            self.terminated = event
        return event

    def shutdown_ping_acked(self) -> ShutdownComplete | None:
        if not self._shutdown_started or self._shutdown_done:
            return None
        return self.finish_shutdown()

    def _mark_reset(self, stream: Stream) -> None:
        self._discard_unread(stream.stream_id)
        stream.apply(StreamInput.RESET)

    def _discard_unread(self, stream_id: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None and stream.unread:
            # The app will not read what is queued for it; the connection window is
            # what matters for the other streams.
            unread, stream.unread = stream.unread, 0
            self._h2.acknowledge_received_data(unread, stream_id)

    # --- output --------------------------------------------------------------------------------

    def send_informational(
        self, stream_id: int, status: int, headers: list[tuple[bytes, bytes]]
    ) -> None:
        """A 1xx response, such as 103 Early Hints, before the final head."""
        if not 100 <= status < 200 or status == 101:
            raise H2ResponseError(f"{status} is not an informational status HTTP/2 allows")
        stream = self._live(stream_id)
        if stream is None or stream.state not in (StreamState.RECEIVING, StreamState.REQUEST_DONE):
            return
        fields = [(b":status", str(status).encode()), *checked_response_fields(headers)]
        self._h2.send_headers(stream_id, fields)
        self._pull_output()

    def send_response_head(
        self,
        stream_id: int,
        status: int,
        headers: list[tuple[bytes, bytes]],
        *,
        end_stream: bool = False,
    ) -> None:
        """The final response head. HEAD, 204 and 304 end the stream here; later body is dropped."""
        fields = checked_response_head(status, headers)
        self.send_checked_head(stream_id, status, fields, end_stream)

    def send_checked_head(
        self,
        stream_id: int,
        status: int,
        fields: list[tuple[bytes, bytes]],
        end_stream: bool = False,
    ) -> None:
        """:meth:`send_response_head` for ``fields`` from :func:`checked_response_head`."""
        stream = self._live(stream_id)
        if stream is None:
            return
        after = next_state(stream.state, StreamInput.SEND_HEAD)  # check, send, then commit
        body_allowed = not (stream.head_request or status in _NO_BODY_STATUSES)
        end = end_stream or not body_allowed
        self._pull_output()  # what h2 queued goes first
        self._out += response_head_frames(self._h2, stream_id, fields, end)
        stream.state, stream.body_allowed = after, body_allowed
        if end:
            stream.apply(StreamInput.SEND_END)
        self._pull_output()

    def send_body(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> SendResult:
        """Send as much of ``data`` as the windows and the output bound allow."""
        stream = self._live(stream_id)
        if (
            stream is None
            or not stream.body_allowed
            or stream.state in (StreamState.RESPONSE_DONE, StreamState.CLOSED)
        ):
            return SendResult(len(data), 0, window_blocked=False)
        window = self._h2.local_flow_control_window(stream_id)
        room = min(window, self.settings.max_pending_output - len(self._out))
        sent = max(0, min(len(data), room))
        remaining = len(data) - sent
        ending = end_stream and not remaining
        frame_size = self._h2.max_outbound_frame_size
        for start in range(0, sent, frame_size):
            last = start + frame_size >= sent
            chunk = data[start : min(start + frame_size, sent)]
            self._h2.send_data(stream_id, chunk, end_stream=ending and last)
        stream.apply(StreamInput.SEND_BODY)
        if ending:
            if not sent:
                self._h2.end_stream(stream_id)  # an empty DATA frame: no window needed
            stream.apply(StreamInput.SEND_END)
        self._pull_output()
        return SendResult(sent, remaining, window_blocked=bool(remaining) and room == window)

    def send_trailers(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> None:
        """Response trailers: a HEADERS frame with END_STREAM ends the response."""
        stream = self._live(stream_id)
        if stream is None or not stream.body_allowed:
            return
        self._h2.send_headers(stream_id, checked_response_fields(headers), end_stream=True)
        stream.apply(StreamInput.SEND_END)
        self._pull_output()

    def reset_stream(
        self, stream_id: int, error_code: ErrorCodes = ErrorCodes.INTERNAL_ERROR
    ) -> None:
        """End a stream abruptly (the app failed after its response started)."""
        stream = self._live(stream_id)
        if stream is None or stream.state is StreamState.CLOSED:
            return
        self._h2.reset_stream(stream_id, error_code)
        self._mark_reset(stream)
        self._pull_output()

    def body_consumed(self, stream_id: int, amount: int) -> None:
        """The app has read ``amount`` body bytes of this stream: reopen that much window."""
        stream = self._streams.get(stream_id)
        if stream is None or amount <= 0 or amount > stream.unread:
            return
        stream.unread -= amount
        if stream.state is not StreamState.RESET:
            self._h2.acknowledge_received_data(amount, stream_id)
            self._pull_output()

    def stream_finished(self, stream_id: int) -> None:
        """The caller is done with a stream (its app returned): forget our record of it."""
        stream = self._streams.get(stream_id)
        if stream is not None and not stream.in_flight:
            self._discard_unread(stream_id)
            del self._streams[stream_id]

    # --- shutdown ------------------------------------------------------------------------------

    def start_shutdown(self) -> None:
        """Step one of a graceful shutdown: GOAWAY with 2^31-1, and a PING to time the round trip.

        Streams the client opens meanwhile are still served; when the PING's ACK
        arrives (or on :meth:`finish_shutdown`), step two names the last stream served.
        """
        if self._shutdown_started or self.terminated is not None:
            return
        self._shutdown_started = True
        self._send_goaway(MAX_STREAM_ID, ErrorCodes.NO_ERROR)
        self._h2.ping(SHUTDOWN_PING)
        self._pull_output()

    def finish_shutdown(self) -> ShutdownComplete:
        """Step two: GOAWAY with the last accepted stream; newer streams are refused."""
        self._shutdown_started = self._shutdown_done = True
        last = self._h2.highest_inbound_stream_id
        self._accept_up_to = last
        if self.terminated is None:
            self._send_goaway(last, ErrorCodes.NO_ERROR)
        return ShutdownComplete(last, self.in_flight)

    def _send_goaway(self, last_stream_id: int, code: ErrorCodes) -> None:
        # Not h2's close_connection: h2 would refuse every later frame of in-flight streams.
        self._pull_output()
        frame = GoAwayFrame(0, last_stream_id=last_stream_id, error_code=code)
        self._out += frame.serialize()

    def _terminate(
        self,
        code: ErrorCodes | int,
        reason: str,
        *,
        by_peer: bool = False,
        graceful: bool = False,
        send_goaway: bool = True,
    ) -> ConnectionTerminated:
        if send_goaway:
            self._pull_output()
            self._h2.close_connection(code, last_stream_id=self._h2.highest_inbound_stream_id)
        self._pull_output()
        self.terminated = ConnectionTerminated(
            code,
            by_peer,
            self._h2.highest_inbound_stream_id,
            self.in_flight,
            graceful=graceful,
            reason=reason,
        )
        return self.terminated

    def _live(self, stream_id: int) -> Stream | None:
        stream = self._streams.get(stream_id)
        if stream is None or stream.state is StreamState.RESET or self.terminated is not None:
            return None
        return stream

    def _pull_output(self) -> None:
        self._out += self._h2.data_to_send()


def _new_h2(settings: H2Settings) -> ServerH2Connection:
    conn = ServerH2Connection(
        hard_header_list_size=settings.hard_header_list_size,
        client_side=False,
        header_encoding=None,
        # _http2_fields applies the same rules in the pass that sorts the fields.
        validate_inbound_headers=False,
        normalize_inbound_headers=False,  # we join cookies ourselves, in place
        validate_outbound_headers=False,  # _checked does it, in one pass
        normalize_outbound_headers=False,
    )
    # Repeated request blocks and response fields are coded once (see _hpack_memo).
    conn.encoder = MemoEncoder()
    conn.decoder = MemoDecoder(conn.decoder.max_header_list_size)
    initial: dict[SettingCodes, int] = {
        SettingCodes.MAX_CONCURRENT_STREAMS: settings.max_concurrent_streams,
        SettingCodes.INITIAL_WINDOW_SIZE: settings.initial_window_size,
        SettingCodes.MAX_FRAME_SIZE: settings.max_frame_size,
        SettingCodes.MAX_HEADER_LIST_SIZE: settings.max_header_list_size,
        SettingCodes.HEADER_TABLE_SIZE: settings.header_table_size,
        SettingCodes.ENABLE_PUSH: 0,
        SettingCodes.ENABLE_CONNECT_PROTOCOL: int(settings.enable_connect_protocol),
    }
    conn.local_settings = h2.settings.Settings(client=False, initial_values=initial)
    conn.max_inbound_frame_size = settings.max_frame_size
    conn.decoder.max_allowed_table_size = settings.header_table_size
    return conn


def _flood_kind(frame: ScannedFrame) -> Flood | None:
    header = frame.header
    if header.type == FrameType.SETTINGS and not header.has(FLAG_ACK):
        return Flood.SETTINGS
    if header.type == FrameType.PING and not header.has(FLAG_ACK):
        return Flood.PING
    if header.type == FrameType.PRIORITY:
        return Flood.PRIORITY
    if header.type == FrameType.WINDOW_UPDATE:
        return Flood.WINDOW_UPDATE
    empty = header.type == FrameType.DATA and data_payload_length(frame) == 0
    if empty and not header.has(FLAG_END_STREAM):
        return Flood.EMPTY_DATA
    return None
