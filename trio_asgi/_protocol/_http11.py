"""The sans-IO HTTP/1.1 server connection: bytes in, request events out; responses in, bytes out.

Theory of operation
-------------------
Request heads are parsed by our own strict parser, held equal to h11's by
differential tests; everything else is ours too, because h11 is lenient where a
server must be strict, its header-size limit only holds while a head is
incomplete, and its per-event state machine is most of its cost. So:

* We own the receive buffer. A request head is handed to the head parser
  (:mod:`._head_parser`) only once we have found its end (CRLF CRLF), after
  checking its size, its line endings and obs-fold on the raw bytes, so the limits
  hold however the bytes arrive. The parser checks the request line, header
  syntax, framing fields and Host exactly as h11 does (:mod:`._h11_head` keeps
  h11's reader as the reference); we add the rules h11 leaves out (version,
  method, target form, CL with TE, repeated lengths, header count), each with
  the status the client should see.
* Bodies are framed by us: a Content-Length body is sliced off the buffer, a
  chunked one decoded by the strict :class:`~._chunked.ChunkedDecoder`. Bytes of
  a pipelined next request stay in the buffer, which is bounded.
* Responses are written by :class:`~._http11_writer.ResponseWriter`, with h11's
  header rules and framing chosen by us.

The I/O layer calls :meth:`HTTP11Connection.receive_data` with what it read
(``b""`` at EOF) and :meth:`~HTTP11Connection.next_event` until it gets
:data:`NEED_DATA`. Between the end of a request body and
:meth:`~HTTP11Connection.start_next_cycle` the connection is :data:`PAUSED`: it
buffers (up to :attr:`~HTTP11Connection.wants_data`) but parses nothing.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

from ._chunked import ChunkedDecoder, ChunkedFramingError
from ._h11_head import HeadParser, selected_parser
from ._head_parser import HeadError, ParsedHead
from ._http11_lifecycle import ConnectionInput, ConnectionState, Fate, Lifecycle
from ._http11_request import BadRequest, RequestHead, interpret_head
from ._http11_writer import CONTINUE_RESPONSE, Framing, ResponseError, ResponseWriter
from ._response import DefaultHeaders, error_response

# Re-exported: the I/O layer and the scope builder take them from here.
__all__ = [
    "BadRequest",
    "ConnectionInput",
    "ConnectionState",
    "Fate",
    "RequestHead",
    "ResponseError",
]


class Signal(enum.Enum):
    #: Nothing more can be parsed until more bytes arrive.
    NEED_DATA = enum.auto()
    #: The request is complete; the next one waits for :meth:`HTTP11Connection.start_next_cycle`.
    PAUSED = enum.auto()


NEED_DATA: Final = Signal.NEED_DATA
PAUSED: Final = Signal.PAUSED


@dataclass(slots=True)
class BodyData:
    data: bytes


@dataclass(slots=True)
class EndOfBody:
    pass


@dataclass(slots=True)
class ClientEOF:
    """The client closed its side. ``clean`` when it happened between requests."""

    clean: bool


Event: TypeAlias = RequestHead | BodyData | EndOfBody | BadRequest | ClientEOF | Signal

_END_OF_BODY: Final = EndOfBody()


class _Phase(enum.Enum):
    #: Waiting for (the rest of) a request head.
    HEAD = enum.auto()
    #: Inside a request body.
    BODY = enum.auto()
    #: The request has been read whole; waiting for the response to finish.
    REQUEST_DONE = enum.auto()
    #: Bad input seen or the client went away: no more events.
    CLOSED = enum.auto()


@dataclass(frozen=True, slots=True)
class Limits:
    max_header_size: int = 16384
    max_header_count: int = 100
    max_target_length: int = 8192

    @property
    def max_request_line(self) -> int:
        # method + SP + target + SP + "HTTP/1.1"; methods longer than 32 bytes are not real
        return self.max_target_length + 48

    @property
    def buffer_limit(self) -> int:
        """How many unparsed bytes we hold at most before we stop reading."""
        return max(self.max_request_line + self.max_header_size + 4, 65536)


#: The head parser every connection uses (``TRIO_ASGI_HEAD_PARSER=h11`` for h11's).
_PARSE_HEAD: Final = selected_parser()
#: Empty lines tolerated before a request line (RFC 9112 section 2.2 asks for at least
#: one); more would let a client hold an idle connection open by sending only CRLFs.
_MAX_LEADING_EMPTY_LINES = 2
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class HTTP11Connection:
    """One server-side HTTP/1.1 connection, strict on input, never doing I/O."""

    __slots__ = (
        "_blank_lines",
        "_body_read",
        "_buffer",
        "_chunked",
        "_continue_pending",
        "_defaults",
        "_eof",
        "_head_scan_from",
        "_limits",
        "_parse_head",
        "_phase",
        "_remaining",
        "_writer",
        "lifecycle",
        "request",
    )

    def __init__(
        self, limits: Limits, defaults: DefaultHeaders, parse_head: HeadParser | None = None
    ) -> None:
        self._limits = limits
        #: Our head parser; h11's only for the differential tests and diagnosis.
        self._parse_head = parse_head or _PARSE_HEAD
        self._defaults = defaults
        self._buffer = bytearray()
        #: A read that was all body (Content-Length framing), not yet handed out.
        self._body_read = b""
        self._eof = False
        self._phase = _Phase.HEAD
        self._head_scan_from = 0
        self._blank_lines = 0
        self._remaining = 0
        self._chunked: ChunkedDecoder | None = None
        self._continue_pending = False
        self._writer: ResponseWriter | None = None
        #: The request being served, once its head is parsed.
        self.request: RequestHead | None = None
        #: Keep alive, drain, linger or close: decided here, acted on by the I/O layer.
        self.lifecycle = Lifecycle()

    # --- input --------------------------------------------------------------------------------

    @property
    def wants_data(self) -> bool:
        """Whether reading more would help: False at EOF or when the buffer is full."""
        return not self._eof and len(self._buffer) < self._limits.buffer_limit

    @property
    def buffered(self) -> int:
        return len(self._buffer) + len(self._body_read)

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the client; ``b""`` means the client closed its side."""
        if not data:
            self._eof = True
        elif (
            not self._buffer
            and not self._body_read
            and self._phase is _Phase.BODY
            and self._chunked is None
            and len(data) <= self._remaining
        ):
            # All of it is Content-Length body: hand it on as it is, without two copies
            # through the buffer (a 1 MiB upload is sixteen such reads).
            self._body_read = data
        else:
            self._buffer += data

    def next_event(self) -> Event:
        phase = self._phase
        if phase is _Phase.HEAD:
            return self._next_head()
        if phase is _Phase.BODY:
            return self._next_body()
        if phase is _Phase.REQUEST_DONE:
            return ClientEOF(clean=False) if self._eof and not self._buffer else PAUSED
        return ClientEOF(clean=False)

    def _fail(self, status: int, detail: str) -> BadRequest:
        self._phase = _Phase.CLOSED
        return BadRequest(status, detail)

    def _next_head(self) -> Event:
        buf = self._buffer
        # RFC 9112 section 2.2: ignore empty lines before a request line (some clients
        # send a CRLF after a POST body), but only a few.
        while buf[:2] == b"\r\n":
            del buf[:2]
            self._blank_lines += 1
            if self._blank_lines > _MAX_LEADING_EMPTY_LINES:
                return self._fail(400, "too many empty lines before the request line")
        end = buf.find(b"\r\n\r\n", self._head_scan_from)
        if end < 0:
            return self._incomplete_head()
        self._head_scan_from = 0
        head = bytes(buf[: end + 4])
        del buf[: end + 4]
        line_end = head.find(b"\r\n")
        problem = self._check_raw_head(head, line_end)
        if problem is not None:
            return problem
        try:
            event = self._parse_head(head)
        except HeadError as exc:
            return self._fail(exc.status, str(exc))
        return self._on_request(event, head)

    def _incomplete_head(self) -> Event:
        buf = self._buffer
        limits = self._limits
        if self._eof:
            self._phase = _Phase.CLOSED
            return ClientEOF(clean=not buf)
        line_end = buf.find(b"\r\n")
        # The request line is checked even once its CRLF is in: else a long line and a
        # head that never ends could fill the buffer without passing either limit.
        if (len(buf) if line_end < 0 else line_end) > limits.max_request_line:
            return self._fail(414, "request line too long")
        if line_end >= 0 and len(buf) - line_end - 2 > limits.max_header_size:
            return self._fail(431, "request header section too large")
        if buf.find(b"\n", self._head_scan_from) >= 0 and buf.count(b"\n") != buf.count(b"\r\n"):
            return self._fail(400, "bare LF in request head")
        self._head_scan_from = max(0, len(buf) - 3)
        return NEED_DATA

    def _check_raw_head(self, head: bytes, line_end: int) -> BadRequest | None:
        limits = self._limits
        if line_end > limits.max_request_line:
            return self._fail(414, "request line too long")
        # The header section: every byte after the request line's CRLF.
        if len(head) - line_end - 2 > limits.max_header_size:
            return self._fail(431, "request header section too large")
        crlf = head.count(b"\r\n")
        if head.count(b"\n") != crlf or head.count(b"\r") != crlf:
            return self._fail(400, "bare CR or LF in request head")
        if b"\r\n " in head or b"\r\n\t" in head:
            return self._fail(400, "obsolete line folding in request head")
        if _CONTROL_BYTES.search(head) is not None:
            # RFC 9110 section 5.5: other control characters make a field value invalid;
            # refusing them keeps terminal escapes and NULs away from apps and logs.
            return self._fail(400, "control character in request head")
        if head.count(b"\r\n") - 2 > limits.max_header_count:
            return self._fail(431, "too many header fields")
        return None

    def _on_request(self, event: ParsedHead, head: bytes) -> Event:
        request = interpret_head(event, head, self._limits.max_target_length)
        if type(request) is BadRequest:
            self._phase = _Phase.CLOSED
            return request
        assert type(request) is RequestHead
        self.request = request
        self._continue_pending = request.expects_continue
        lifecycle = self.lifecycle
        lifecycle.advance(ConnectionInput.REQUEST_HEAD)
        if not request.keep_alive and lifecycle.state is ConnectionState.SERVING:
            self.lifecycle.advance(ConnectionInput.CLOSE_REQUESTED)
        if request.chunked:
            self._chunked = ChunkedDecoder(max_trailer_size=self._limits.max_header_size)
            self._phase = _Phase.BODY
        elif request.content_length:
            self._remaining = request.content_length
            self._phase = _Phase.BODY
        else:
            self._finish_body()
        return request

    def _next_body(self) -> Event:
        buf = self._buffer
        decoder = self._chunked
        if decoder is not None:
            try:
                consumed = decoder.scan(buf, 0)
            except ChunkedFramingError as exc:
                return self._fail(400, str(exc))
            del buf[:consumed]
            data = decoder.take_data()
            if data:
                self._continue_pending = False  # the client stopped waiting for 100
                return BodyData(data)
            if decoder.done:
                self._finish_body()
                return _END_OF_BODY
        else:
            if self._body_read:
                data, self._body_read = self._body_read, b""
                self._remaining -= len(data)
                self._continue_pending = False  # the client stopped waiting for 100
                return BodyData(data)
            size = min(self._remaining, len(buf))
            if size:
                data = bytes(buf[:size])
                del buf[:size]
                self._remaining -= size
                self._continue_pending = False  # the client stopped waiting for 100
                return BodyData(data)
            if not self._remaining:
                self._finish_body()
                return _END_OF_BODY
        if self._eof:
            self._phase = _Phase.CLOSED
            return ClientEOF(clean=False)
        return NEED_DATA

    def _finish_body(self) -> None:
        self._phase = _Phase.REQUEST_DONE
        self._chunked = None
        self._continue_pending = False
        if self.lifecycle.state is ConnectionState.DRAINING:
            self.lifecycle.advance(ConnectionInput.BODY_DRAINED)

    @property
    def request_complete(self) -> bool:
        """The whole request (head and body) has been read."""
        return self._phase is _Phase.REQUEST_DONE

    # --- output -------------------------------------------------------------------------------

    def continue_response(self) -> bytes:
        """``100 Continue``, if the client is still waiting for it; else ``b""``."""
        if not self._continue_pending:
            return b""
        self._continue_pending = False
        return CONTINUE_RESPONSE

    def response_head(
        self, status: int, headers: Sequence[tuple[bytes, bytes]], *, close: bool
    ) -> bytes:
        """Serialise the status line and headers; we choose the framing, not the app.

        Raises:
            ResponseError: a header name or value is invalid (CR, LF, NUL...).
        """
        request = self.request
        assert request is not None
        lifecycle = self.lifecycle
        close = close or lifecycle.state is ConnectionState.SERVING_LAST
        writer = ResponseWriter()
        head = writer.head(
            status,
            headers,
            defaults=self._defaults,
            http11_client=request.http_version == "1.1",
            head_request=request.method == "HEAD",
            keep_alive=request.keep_alive and not close,
        )
        self._writer = writer
        self._continue_pending = False  # a final response cancels the client's wait
        lifecycle.advance(
            ConnectionInput.HEAD_KEEP_ALIVE
            if writer.keep_alive
            else ConnectionInput.CLOSE_REQUESTED
        )
        return head

    def response_head_with_length(
        self, status: int, headers: Sequence[tuple[bytes, bytes]], length: int
    ) -> bytes:
        """The head :meth:`response_head` made, made again with ``Content-Length: length``.

        For a head not written yet whose body turned out to be a file of known size
        (``http.response.pathsend``). Keeps the keep-alive decision already made.

        Raises:
            ResponseError: a header name or value is invalid (CR, LF, NUL...).
        """
        request = self.request
        old = self._writer
        assert request is not None
        assert old is not None
        writer = ResponseWriter()
        head = writer.head(
            status,
            [*headers, (b"content-length", b"%d" % length)],
            defaults=self._defaults,
            http11_client=request.http_version == "1.1",
            head_request=request.method == "HEAD",
            keep_alive=old.keep_alive,
        )
        self._writer = writer
        return head

    def response_file(self, count: int, *, final: bool) -> tuple[bytes, bytes, bool]:
        """Framing for ``count`` body bytes sent from a file (see ResponseWriter.file_body).

        Raises:
            ResponseError: more or fewer bytes than the declared Content-Length.
        """
        writer = self._writer
        assert writer is not None
        framing = writer.file_body(count, final=final)
        if final:
            done = self._phase is _Phase.REQUEST_DONE
            self.lifecycle.advance(
                ConnectionInput.RESPONSE_DONE if done else ConnectionInput.RESPONSE_DONE_BODY_LEFT
            )
        return framing

    @property
    def next_request_waiting(self) -> bool:
        """A pipelined next request's head is already buffered, and the connection stays.

        Asked once a response is complete: it may then wait to go out with the next
        one (the I/O layer writes it before it reads again). A false yes (a buffer of
        empty lines) only delays it until that read.
        """
        return (
            bool(self._buffer)
            and self._phase is _Phase.REQUEST_DONE
            and self.lifecycle.fate is Fate.KEEP_ALIVE
            and b"\r\n\r\n" in self._buffer
        )

    @property
    def response_has_length(self) -> bool:
        """The response in progress declared its Content-Length."""
        return self._writer is not None and self._writer.framing is Framing.LENGTH

    @property
    def response_chunked(self) -> bool:
        """The response in progress uses chunked framing (so trailers can be sent)."""
        return self._writer is not None and self._writer.framing is Framing.CHUNKED

    def response_body(
        self, data: bytes, *, final: bool, trailers: list[tuple[bytes, bytes]] | None = None
    ) -> bytes:
        """Serialise body bytes (dropped for HEAD, 204 and 304) and, if final, the end.

        Raises:
            ResponseError: more or fewer bytes than the declared Content-Length.
        """
        writer = self._writer
        assert writer is not None
        data = writer.body(data, final=final, trailers=trailers)
        if final:
            done = self._phase is _Phase.REQUEST_DONE
            self.lifecycle.advance(
                ConnectionInput.RESPONSE_DONE if done else ConnectionInput.RESPONSE_DONE_BODY_LEFT
            )
        return data

    def error_response(self, status: int, *, extra: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
        """A complete error reply, after which the connection must close.

        Only serialises: the I/O layer that writes it tells :attr:`lifecycle`
        (:attr:`ConnectionInput.ERROR_ANSWERED`).
        """
        request = self.request
        version = request.http_version.encode("ascii") if request else b"1.1"
        return error_response(
            status,
            self._defaults,
            http_version=version,
            extra_headers=extra,
            head_request=request is not None and request.method == "HEAD",
        )

    # --- between requests -----------------------------------------------------------------------

    @property
    def reusable(self) -> bool:
        """After a finished response: can another request be read on this connection?"""
        state = self.lifecycle.state
        return (
            state is ConnectionState.IDLE or state is ConnectionState.IDLE_LAST
        ) and self._writer is not None

    @property
    def fate(self) -> Fate:
        """What the I/O layer should do with the connection now.

        See :data:`~._http11_lifecycle.LIFECYCLE`.
        """
        return self.lifecycle.fate

    def detach(self) -> bytes:
        """Hand the connection to another protocol (a WebSocket): return the unread bytes.

        After this no more events are produced; the bytes that followed the request
        head belong to the new protocol.
        """
        self._phase = _Phase.CLOSED
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

    def start_next_cycle(self) -> None:
        """Reset for the next request on a kept-alive connection (requires :attr:`reusable`)."""
        assert self.reusable
        self._phase = _Phase.HEAD
        self._blank_lines = 0
        self.request = None
        self._writer = None
