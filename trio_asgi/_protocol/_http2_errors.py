"""Where h2's error answers become the ones RFC 9113 and RFC 7541 require.

h2 answers every HPACK decoding failure with PROTOCOL_ERROR (RFC 9113 section 4.3
requires COMPRESSION_ERROR), and makes several *stream* errors connection errors: a
malformed request (section 8.1.1), a Content-Length that disagrees with the DATA, a
stream over SETTINGS_MAX_CONCURRENT_STREAMS (section 5.1.2: REFUSED_STREAM on the
stream), a stream that depends on itself (section 5.3.1). :class:`ServerH2Connection`
is h2's connection with one override at the one place every received frame passes,
``_receive_frame``; frame-size errors are answered earlier, by
:mod:`._http2_frames`. :data:`ERROR_TABLE` lists every row; the tests drive each with
raw frames.

The override uses h2 internals that have been stable since h2 3 (``_receive_frame``,
``_receive_headers_frame``, ``_closed_streams``, ``highest_inbound_stream_id``);
the tests of every row catch a change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import h2.connection
import h2.exceptions
import hpack.exceptions
from h2.errors import ErrorCodes
from h2.stream import StreamClosedBy
from hyperframe.frame import (
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from ._http2_lean_tables import FrameDispatch, compact_hpack_tables
from ._http2_settings_store import compact_settings


@dataclass(frozen=True, slots=True)
class ErrorRow:
    trigger: str
    rfc: str
    required: str
    h2_answer: str
    ours: str


#: (trigger, RFC section, required answer, h2 4.4's answer, our answer): the table in
#: ``docs/explanation/http2.rst``, each row tested in ``tests/protocol/test_http2_errors.py``.
ERROR_TABLE: tuple[ErrorRow, ...] = (
    ErrorRow(
        "HPACK: index past the tables",
        "7541 2.3.3, 9113 4.3",
        "GOAWAY COMPRESSION_ERROR",
        "GOAWAY PROTOCOL_ERROR",
        "GOAWAY COMPRESSION_ERROR",
    ),
    ErrorRow(
        "HPACK: bad Huffman padding or EOS",
        "7541 5.2, 9113 4.3",
        "GOAWAY COMPRESSION_ERROR",
        "GOAWAY PROTOCOL_ERROR",
        "GOAWAY COMPRESSION_ERROR",
    ),
    ErrorRow(
        "HPACK: table size update over the setting",
        "7541 6.3, 9113 4.3",
        "GOAWAY COMPRESSION_ERROR",
        "GOAWAY PROTOCOL_ERROR",
        "GOAWAY COMPRESSION_ERROR",
    ),
    ErrorRow(
        "HPACK: truncated field",
        "7541 5.1, 9113 4.3",
        "GOAWAY COMPRESSION_ERROR",
        "GOAWAY PROTOCOL_ERROR",
        "GOAWAY COMPRESSION_ERROR",
    ),
    ErrorRow(
        "SETTINGS ACK with a payload",
        "9113 6.5",
        "GOAWAY FRAME_SIZE_ERROR",
        "GOAWAY PROTOCOL_ERROR",
        "GOAWAY FRAME_SIZE_ERROR",
    ),
    ErrorRow(
        "frame over SETTINGS_MAX_FRAME_SIZE",
        "9113 4.2",
        "GOAWAY FRAME_SIZE_ERROR",
        "GOAWAY FRAME_SIZE_ERROR after buffering the whole payload",
        "GOAWAY FRAME_SIZE_ERROR on the 9-byte header",
    ),
    ErrorRow(
        "PRIORITY on a stream, length not 5",
        "9113 6.3",
        "RST_STREAM FRAME_SIZE_ERROR",
        "GOAWAY FRAME_SIZE_ERROR",
        "RST_STREAM FRAME_SIZE_ERROR",
    ),
    ErrorRow(
        "WINDOW_UPDATE of 0 on a stream",
        "9113 6.9",
        "RST_STREAM PROTOCOL_ERROR",
        "GOAWAY PROTOCOL_ERROR",
        "RST_STREAM PROTOCOL_ERROR",
    ),
    ErrorRow(
        "malformed request header (upper case, connection-specific, pseudo)",
        "9113 8.1.1, 8.2",
        "RST_STREAM PROTOCOL_ERROR",
        "GOAWAY PROTOCOL_ERROR",
        "RST_STREAM PROTOCOL_ERROR",
    ),
    ErrorRow(
        "Content-Length disagrees with DATA",
        "9113 8.1.1",
        "RST_STREAM PROTOCOL_ERROR",
        "GOAWAY PROTOCOL_ERROR",
        "RST_STREAM PROTOCOL_ERROR",
    ),
    ErrorRow(
        "stream over SETTINGS_MAX_CONCURRENT_STREAMS",
        "9113 5.1.2",
        "RST_STREAM PROTOCOL_ERROR or REFUSED_STREAM",
        "GOAWAY PROTOCOL_ERROR",
        "RST_STREAM REFUSED_STREAM",
    ),
    ErrorRow(
        "HEADERS whose priority depends on its own stream",
        "9113 5.3.1",
        "RST_STREAM PROTOCOL_ERROR",
        "GOAWAY PROTOCOL_ERROR",
        "RST_STREAM PROTOCOL_ERROR",
    ),
    ErrorRow(
        "header list over the decoder's hard bound",
        "9113 10.5.1",
        "431, or a connection error",
        "GOAWAY ENHANCE_YOUR_CALM",
        "431 up to twice the setting; GOAWAY ENHANCE_YOUR_CALM past it",
    ),
)


class CompressionError(h2.exceptions.ProtocolError):
    """An HPACK decoding failure: a connection error of type COMPRESSION_ERROR."""

    error_code = ErrorCodes.COMPRESSION_ERROR


@dataclass(frozen=True, slots=True)
class LocalReset:
    """h2-style event: we reset this stream because of the client's frames."""

    stream_id: int
    error_code: ErrorCodes
    reason: str


#: Causes of h2's ProtocolError that mean "the header block could not be decoded".
_HPACK_FAILURES = (hpack.exceptions.HPACKError, IndexError, TypeError, UnicodeDecodeError)


@dataclass(frozen=True, slots=True)
class PeerGoAway:
    """h2-style event: the client sent GOAWAY (h2's own handling would close the connection
    at once, so that no in-flight stream could finish)."""

    error_code: ErrorCodes | int
    last_stream_id: int
    additional_data: bytes


class ServerH2Connection(h2.connection.H2Connection):
    """h2's connection, answering the rows of :data:`ERROR_TABLE` as the RFCs require.

    Its frame dispatch and HPACK tables are the lean ones of :mod:`._http2_lean_tables`.
    """

    _frame_dispatch_table = FrameDispatch()

    def __init__(self, *, hard_header_list_size: int, **config: Any) -> None:
        #: The open inbound streams, counted once while a HEADERS frame opens a stream.
        self._counted_inbound: int | None = None
        super().__init__(h2.config.H2Configuration(**config))
        self._hard_header_list_size = hard_header_list_size

    @property
    def open_inbound_streams(self) -> int:
        # h2 counts by walking every stream it holds; a new stream's HEADERS frame had
        # it count twice (our refusal check, then its own): the second reads the first.
        counted = self._counted_inbound
        return super().open_inbound_streams if counted is None else counted

    def _receive_frame(self, frame: Any) -> list[Any]:
        # h2's decoder bound is its own 64 KiB default (or the advertised setting once
        # an ACK changes it); ours is the hard bound, and between the advertised
        # setting and it we answer 431 on the stream (the list was decoded, so HPACK
        # state is sound).
        self.decoder.max_header_list_size = self._hard_header_list_size
        if isinstance(frame, GoAwayFrame):
            # h2 moves to CLOSED on a received GOAWAY and refuses every later send;
            # RFC 9113 section 6.8 lets streams up to last-stream-id finish.
            return [PeerGoAway(frame.error_code, frame.last_stream_id, frame.additional_data)]
        try:
            events: list[Any] = super()._receive_frame(frame)
        except h2.exceptions.ProtocolError as exc:
            return self._answer_protocol_error(frame, exc)
        if isinstance(frame, SettingsFrame):
            # Settings change (and are first replaced) only around SETTINGS frames: the
            # client's first frame is one, so an idle connection holds the lean lists.
            # The HPACK coders are final by then too (whoever made them).
            compact_settings(self.local_settings)
            compact_settings(self.remote_settings)
            compact_hpack_tables(self.encoder, self.decoder)
        return events

    def _answer_protocol_error(self, frame: Any, exc: h2.exceptions.ProtocolError) -> list[Any]:
        if isinstance(exc.__cause__, hpack.exceptions.OversizedHeaderListError):
            raise exc
        if isinstance(exc.__cause__, _HPACK_FAILURES):
            raise CompressionError(str(exc)) from exc
        connection_level = isinstance(
            exc,
            h2.exceptions.FlowControlError
            | h2.exceptions.StreamIDTooLowError
            | h2.exceptions.NoSuchStreamError
            | h2.exceptions.FrameTooLargeError,
        )
        stream = self.streams.get(frame.stream_id)
        if (
            connection_level
            or not isinstance(frame, HeadersFrame | DataFrame)
            or stream is None
            or self.state_machine.state == h2.connection.ConnectionState.CLOSED
        ):
            raise exc
        # A malformed request, a Content-Length mismatch, a self-dependency: the
        # header block was decoded whole (HPACK state is sound), so the stream alone ends.
        if isinstance(frame, DataFrame):
            # h2 counted the DATA against the connection window; nobody will read it.
            self._prepare_for_sending(self._hand_back_connection_window(frame))
        self._prepare_for_sending(stream.reset_stream(ErrorCodes.PROTOCOL_ERROR))
        return [LocalReset(frame.stream_id, ErrorCodes.PROTOCOL_ERROR, str(exc))]

    def _hand_back_connection_window(self, frame: DataFrame) -> list[Any]:
        increment = self._inbound_flow_control_window_manager.process_bytes(
            frame.flow_controlled_length
        )
        if not increment:
            return []
        update = WindowUpdateFrame(0)
        update.window_increment = increment
        return [update]

    def _receive_headers_frame(self, frame: HeadersFrame) -> tuple[list[Any], list[Any]]:
        result: tuple[list[Any], list[Any]]
        if frame.stream_id in self.streams:  # trailers: no stream opens, nothing to count
            result = super()._receive_headers_frame(frame)
            return result
        open_now = self.open_inbound_streams
        over_limit = open_now >= self.local_settings.max_concurrent_streams
        if not (over_limit and self._may_open(frame.stream_id)):
            self._counted_inbound = open_now
            try:
                result = super()._receive_headers_frame(frame)
            finally:
                self._counted_inbound = None
            return result
        # RFC 9113 section 5.1.2: refuse the stream, not the connection. The block is
        # still decoded (bounded by the decoder's limit) to keep HPACK state in step.
        h2.connection._decode_headers(self.decoder, frame.data)
        self.highest_inbound_stream_id = frame.stream_id
        self._closed_streams[frame.stream_id] = StreamClosedBy.SEND_RST_STREAM
        refusal = RstStreamFrame(frame.stream_id)
        refusal.error_code = ErrorCodes.REFUSED_STREAM
        reason = "over SETTINGS_MAX_CONCURRENT_STREAMS"
        return [refusal], [LocalReset(frame.stream_id, ErrorCodes.REFUSED_STREAM, reason)]

    def _may_open(self, stream_id: int) -> bool:
        """A client stream id h2 would accept as new (odd, higher than any before)."""
        return stream_id % 2 == 1 and stream_id > self.highest_inbound_stream_id
