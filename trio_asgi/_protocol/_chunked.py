"""A strict decoder for chunked request bodies.

h11 decodes chunked bodies, but leniently in places a server must not be
(CVE-2025-43859 was one): it accepts whitespace after a chunk size, any bytes
(NUL included) in chunk extensions, bare LF in trailers, and 20 hex digits of
chunk size. A front end and a back end that disagree on where a body ends is
how requests get smuggled, so we decode the framing ourselves, strictly.

Theory of operation: :meth:`ChunkedDecoder.scan` walks the buffer from the
last position it reached, one framing element at a time, collects the chunk
data it passes (:meth:`~ChunkedDecoder.take_data`) and returns the new position.
Everything before that position has been consumed; everything after it waits
for more data. A violation raises :class:`ChunkedFramingError`. Trailers are
checked and dropped: ASGI has no request trailers, and merging them into the
headers is how a smuggled header would get in.
"""

from __future__ import annotations

import enum
import re

# chunk = chunk-size [ chunk-ext ] CRLF   (RFC 9112 section 7.1)
# chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
# 16 hex digits is already 2**64 - 1 bytes: anything longer is an attack, not a body.
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"'
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})((?:[ \t]*;[ \t]*"
    + _TOKEN
    + rb"(?:[ \t]*=[ \t]*(?:"
    + _TOKEN
    + rb"|"
    + _QUOTED
    + rb"))?)*)"
)
_VCHAR = rb"[\x21-\x7e\x80-\xff]"
_FIELD_VALUE = rb"(?:" + _VCHAR + rb"(?:[ \t\x21-\x7e\x80-\xff]*" + _VCHAR + rb")?)?"
_TRAILER_LINE = re.compile(_TOKEN + rb":[ \t]*" + _FIELD_VALUE + rb"[ \t]*")
_MAX_CHUNK_LINE = 4096
_FORBIDDEN_TRAILERS = frozenset({b"content-length", b"transfer-encoding", b"host", b"trailer"})


class ChunkedFramingError(Exception):
    """The chunked framing is invalid; the request gets a 400 and the connection closes."""


class _Phase(enum.Enum):
    #: Waiting for a chunk-size line.
    SIZE_LINE = enum.auto()
    #: Inside chunk data; ``_remaining`` bytes of it are still to come.
    DATA = enum.auto()
    #: Waiting for the CRLF that ends the chunk data.
    DATA_END = enum.auto()
    #: After the last chunk: trailer lines until an empty line.
    TRAILERS = enum.auto()
    #: The body is complete; bytes after it belong to the next request.
    DONE = enum.auto()


class ChunkedDecoder:
    """Decodes chunked framing from a buffer whose front is consumed by the caller."""

    __slots__ = ("_data", "_max_trailer_size", "_phase", "_remaining", "_trailer_size")

    def __init__(self, *, max_trailer_size: int) -> None:
        self._data: list[bytes] = []
        self._phase = _Phase.SIZE_LINE
        self._remaining = 0
        self._trailer_size = 0
        self._max_trailer_size = max_trailer_size

    @property
    def done(self) -> bool:
        """The last chunk and the trailers have been read."""
        return self._phase is _Phase.DONE

    def take_data(self) -> bytes:
        """The chunk data passed by :meth:`scan` since the last call."""
        data = self._data
        if not data:
            return b""
        self._data = []
        return data[0] if len(data) == 1 else b"".join(data)

    def scan(self, buf: bytes | bytearray, pos: int) -> int:
        """Decode ``buf`` from ``pos``; return the end of the framing consumed so far."""
        end = len(buf)
        while pos < end:
            phase = self._phase
            if phase is _Phase.DATA:
                step = min(self._remaining, end - pos)
                self._data.append(bytes(buf[pos : pos + step]))
                pos += step
                self._remaining -= step
                if not self._remaining:
                    self._phase = _Phase.DATA_END
            elif phase is _Phase.DATA_END:
                if end - pos < 2:
                    if buf[pos : pos + 1] != b"\r":
                        raise ChunkedFramingError("chunk data not followed by CRLF")
                    return pos
                if buf[pos : pos + 2] != b"\r\n":
                    raise ChunkedFramingError("chunk data not followed by CRLF")
                pos += 2
                self._phase = _Phase.SIZE_LINE
            elif phase is _Phase.DONE:
                return pos
            else:
                line_end = _find_line_end(buf, pos, _MAX_CHUNK_LINE)
                if line_end < 0:
                    return pos
                line = bytes(buf[pos:line_end])
                pos = line_end + 2
                if phase is _Phase.SIZE_LINE:
                    self._on_size_line(line)
                else:
                    self._on_trailer_line(line)
        return pos

    def _on_size_line(self, line: bytes) -> None:
        match = _CHUNK_LINE.fullmatch(line)
        if match is None:
            raise ChunkedFramingError(f"invalid chunk-size line {line[:40]!r}")
        size = int(match.group(1), 16)
        if size:
            self._remaining = size
            self._phase = _Phase.DATA
        else:
            self._phase = _Phase.TRAILERS

    def _on_trailer_line(self, line: bytes) -> None:
        if not line:
            self._phase = _Phase.DONE
            return
        self._trailer_size += len(line) + 2
        if self._trailer_size > self._max_trailer_size:
            raise ChunkedFramingError("trailer section too large")
        if _TRAILER_LINE.fullmatch(line) is None:
            raise ChunkedFramingError(f"invalid trailer line {line[:40]!r}")
        name = line[: line.index(b":")].lower()
        if name in _FORBIDDEN_TRAILERS:
            # RFC 9110 section 6.5.1: framing and routing fields never belong in trailers.
            raise ChunkedFramingError(f"{name.decode()} is not allowed in trailers")


def _find_line_end(buf: bytes | bytearray, pos: int, limit: int) -> int:
    """Index of the CRLF ending the line at ``pos``; -1 if incomplete. Bare LF or CR is an error."""
    lf = buf.find(b"\n", pos, pos + limit + 2)
    if lf < 0:
        if len(buf) - pos > limit:
            raise ChunkedFramingError("chunk framing line too long")
        cr = buf.find(b"\r", pos)
        if 0 <= cr < len(buf) - 1:
            raise ChunkedFramingError("bare CR in chunk framing")
        return -1
    if lf == pos or buf[lf - 1] != 0x0D:
        raise ChunkedFramingError("bare LF in chunk framing")
    if buf.find(b"\r", pos, lf - 1) >= 0:
        raise ChunkedFramingError("bare CR in chunk framing")
    return lf - 1
