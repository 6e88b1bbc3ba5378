"""Serialising one HTTP/1.1 response: strict headers, and framing chosen by us.

h11's writer validates and frames well, but it runs a whole state machine per
event (about 60% of h11's cost per request on our hot path). We only need its
rules, so we keep them here, one table-free pass per message:

* Header names must be tokens and values visible characters with inner spaces
  (RFC 9110 section 5.5), the same patterns h11 uses, so CR, LF and NUL can never
  split a response.
* The app's ``Transfer-Encoding`` is dropped: framing is ours. With a valid
  ``Content-Length`` the body must match it exactly; without one, HTTP/1.1
  clients get chunked framing and HTTP/1.0 clients a body delimited by closing.
* No body bytes for HEAD, 204 and 304; the head still describes the body a GET
  would have had.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from typing import Final

from ._response import DefaultHeaders, reason_phrase

_TOKEN_RE: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE_RE: Final = re.compile(rb"(?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?")
_DIGITS_RE: Final = re.compile(rb"[0-9]{1,20}")
_NO_BODY_STATUSES: Final = frozenset({204, 304})
_LAST_CHUNK: Final = b"0\r\n\r\n"


class ResponseError(Exception):
    """The response the app produced cannot be sent (bad header, body longer than declared...)."""


class Framing(enum.Enum):
    #: ``Content-Length``: exactly that many body bytes.
    LENGTH = enum.auto()
    #: ``Transfer-Encoding: chunked``.
    CHUNKED = enum.auto()
    #: HTTP/1.0 without a length: the body ends when we close the connection.
    CLOSE = enum.auto()
    #: HEAD, 204, 304: no body bytes at all.
    NONE = enum.auto()


class ResponseWriter:
    """One response's bytes. Create one per response."""

    __slots__ = ("_remaining", "complete", "framing", "keep_alive")

    def __init__(self) -> None:
        self.framing = Framing.LENGTH
        #: The connection may carry another request after this response.
        self.keep_alive = False
        #: The final body (or trailers) message has been serialised.
        self.complete = False
        self._remaining = 0

    def head(
        self,
        status: int,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        defaults: DefaultHeaders,
        http11_client: bool,
        head_request: bool,
        keep_alive: bool,
    ) -> bytes:
        """The status line and headers.

        Args:
            keep_alive: whether we would keep the connection (the request allows it
                and the server is not closing); the app's headers and the framing
                may still rule it out.

        Raises:
            ResponseError: an invalid header name or value, or a bad Content-Length.
        """
        if not 200 <= status <= 599:
            raise ResponseError(f"{status} is not a final status")
        present: set[bytes] = set()
        block, length = _app_headers(headers, present)
        if b"connection" in present and _says_close(headers):
            keep_alive = False
        framing_line = b""
        if head_request or status in _NO_BODY_STATUSES:
            self.framing = Framing.NONE
        elif length is not None:
            self.framing = Framing.LENGTH
            self._remaining = int(length)
        elif http11_client:
            self.framing = Framing.CHUNKED
            framing_line = b"transfer-encoding: chunked\r\n"
        else:
            self.framing = Framing.CLOSE
            keep_alive = False
        close_line = b""
        if not keep_alive and b"connection" not in present:
            close_line = b"connection: close\r\n"
        self.keep_alive = keep_alive
        return b"".join(
            (
                status_line(status),
                block,
                framing_line,
                defaults.lines(present),
                close_line,
                b"\r\n",
            )
        )

    def body(
        self, data: bytes, *, final: bool, trailers: list[tuple[bytes, bytes]] | None = None
    ) -> bytes:
        """Body bytes framed for the wire; with ``final``, the end of the message too.

        Raises:
            ResponseError: more or fewer bytes than the declared Content-Length, or
                invalid trailers.
        """
        framing = self.framing
        if trailers and framing is not Framing.CHUNKED:
            raise ResponseError("trailers need chunked framing")
        out = b""
        if framing is Framing.LENGTH:
            self._remaining -= len(data)
            if self._remaining < 0:
                raise ResponseError("more body than the declared Content-Length")
            if final and self._remaining:
                raise ResponseError("less body than the declared Content-Length")
            out = data
        elif framing is Framing.CHUNKED:
            if data:
                out = b"%x\r\n%s\r\n" % (len(data), data)
            if final:
                out += _last_chunk(trailers) if trailers else _LAST_CHUNK
        elif framing is Framing.CLOSE:
            out = data
        if final:
            self.complete = True
        return out

    def file_body(self, count: int, *, final: bool) -> tuple[bytes, bytes, bool]:
        """Framing for ``count`` body bytes that go out from a file, not through us.

        Returns:
            The bytes before the file's, the bytes after them, and whether the file's
            bytes go out at all (not for HEAD, 204 and 304).

        Raises:
            ResponseError: more or fewer bytes than the declared Content-Length.
        """
        framing = self.framing
        before = after = b""
        if framing is Framing.LENGTH:
            self._remaining -= count
            if self._remaining < 0:
                raise ResponseError("more body than the declared Content-Length")
            if final and self._remaining:
                raise ResponseError("less body than the declared Content-Length")
        elif framing is Framing.CHUNKED:
            if count:
                before, after = b"%x\r\n" % count, b"\r\n"
            if final:
                after += _LAST_CHUNK
        if final:
            self.complete = True
        return before, after, framing is not Framing.NONE and count > 0


def early_hints(links: Iterable[bytes]) -> bytes:
    """A ``103 Early Hints`` response with one ``Link`` header per value (RFC 8297).

    Raises:
        ResponseError: a link value that is not a valid header value.
    """
    lines = [b"HTTP/1.1 103 Early Hints\r\n"]
    for link in links:
        if not link or _VALUE_RE.fullmatch(link) is None:
            raise ResponseError(f"illegal Link value {link!r}")
        lines.append(b"link: %s\r\n" % link)
    lines.append(b"\r\n")
    return b"".join(lines)


def _last_chunk(trailers: list[tuple[bytes, bytes]]) -> bytes:
    lines = [b"0\r\n"]
    for name, value in trailers:
        if _TOKEN_RE.fullmatch(name) is None or _VALUE_RE.fullmatch(value) is None:
            raise ResponseError(f"illegal trailer {name!r}: {value!r}")
        lines.append(b"%s: %s\r\n" % (name, value))
    lines.append(b"\r\n")
    return b"".join(lines)


CONTINUE_RESPONSE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


_STATUS_LINES: dict[int, bytes] = {}

#: App headers already found valid, by (name, value), with the lowered name: most apps
#: send the same few headers on every response, and two regular-expression matches
#: per header were most of a head's cost. Bounded in entries and in each entry's size;
#: emptied when full, so the headers in use come back at once.
_VALID_HEADERS: dict[tuple[bytes, bytes], bytes] = {}
_VALID_HEADERS_MAX: Final = 512
_VALID_HEADER_MAX_BYTES: Final = 256


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <status> <reason>`` CRLF, made once per status (at most 400 of them)."""
    line = _STATUS_LINES.get(status)
    if line is None:
        line = _STATUS_LINES[status] = b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status))
    return line


def _app_headers(
    headers: Iterable[tuple[bytes, bytes]], present: set[bytes]
) -> tuple[bytes, bytes | None]:
    """Check the app's headers, in one pass: their lines, and the Content-Length if any.

    ``present`` gets each lowered name (the Transfer-Encoding we drop aside).

    Raises:
        ResponseError: an invalid name or value, or conflicting Content-Lengths.
    """
    lines: list[bytes] = []
    length: bytes | None = None
    valid = _VALID_HEADERS
    for pair in headers:
        lowered = valid.get(pair)
        if lowered is None:
            lowered = _check_header(pair)
        if lowered == b"transfer-encoding":
            continue  # framing is ours
        if lowered == b"content-length":
            value = pair[1]
            if _DIGITS_RE.fullmatch(value) is None or (length is not None and value != length):
                raise ResponseError(f"bad Content-Length {value!r}")
            if length is not None:
                continue  # the same length twice: send it once
            length = value
        present.add(lowered)
        lines.append(b"%s: %s\r\n" % pair)
    return b"".join(lines), length


def _check_header(pair: tuple[bytes, bytes]) -> bytes:
    """The lowered name of a valid header, remembered in the bounded _VALID_HEADERS.

    Raises:
        ResponseError: an invalid name or value.
    """
    name, value = pair
    if _TOKEN_RE.fullmatch(name) is None:
        raise ResponseError(f"illegal header name {name!r}")
    if _VALUE_RE.fullmatch(value) is None:
        raise ResponseError(f"illegal header value {value!r}")
    lowered = name.lower()
    if len(name) + len(value) <= _VALID_HEADER_MAX_BYTES:
        if len(_VALID_HEADERS) >= _VALID_HEADERS_MAX:
            _VALID_HEADERS.clear()
        _VALID_HEADERS[(name, value)] = lowered
    return lowered


def _says_close(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    """Whether an app's ``Connection`` header asks to close (only asked when it has one)."""
    return any(
        name.lower() == b"connection" and b"close" in value.lower() for name, value in headers
    )
