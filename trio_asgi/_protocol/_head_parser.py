"""Our request-head parser: one complete head in, its request line and header fields out.

Theory of operation
-------------------
The connection (:mod:`._http11`) finds the end of a head (CRLF CRLF) itself and checks
the raw bytes first: sizes, line endings (CRLF only), obs-fold, control bytes, the
header count. What reaches :func:`parse_head` is therefore one complete head whose
lines all end in CRLF. This module then applies the grammars of RFC 9112 section 3
(request line) and RFC 9110 section 5 (field names and values), and the per-field
rules a server must enforce before framing a body: one Content-Length (equal repeats
are merged, as h11 does; the connection refuses repeats itself), a Transfer-Encoding
of exactly ``chunked`` (else 501), and the Host count (RFC 9112 section 3.2).

The parse is two passes of the C regular-expression engine over the whole head (the
request line, then every field line at once) and one ``split`` of the field lines:
no per-byte loops, no per-field regular expression. It gives exactly what h11's head
reader gives, status for status; :mod:`._h11_head` keeps h11's reader as the reference
and ``tests/protocol/test_head_parser_differential.py`` holds the two to the same
answers on valid, invalid, mutated and truncated input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["HeadError", "ParsedHead", "parse_head"]

#: RFC 9110 section 5.6.2.
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
#: A field value: visible bytes or obs-text, with inner spaces and tabs (RFC 9110 5.5);
#: every other control byte and whitespace (\v, \f) is refused, as h11 refuses it.
_FIELD_VALUE = rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?"
#: method SP request-target SP HTTP-version CRLF (RFC 9112 section 3).
_REQUEST_LINE = re.compile(rb"(%s) ([\x21-\x7e]+) HTTP/([0-9]\.[0-9])\r\n" % _TOKEN)
#: Every field line, then the empty line that ends the head.
_FIELD_LINES = re.compile(rb"(?:%s:[ \t]*%s[ \t]*\r\n)*\r\n" % (_TOKEN, _FIELD_VALUE))
_DIGITS = re.compile(rb"[0-9]+")
#: h11 allows at most this many digits in a Content-Length (about 10^20 bytes).
_MAX_LENGTH_DIGITS = 20


class HeadError(Exception):
    """A malformed request head; ``status`` is what the client should be answered."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


@dataclass(slots=True)
class ParsedHead:
    method: bytes
    target: bytes
    #: ``b"1.1"``, ``b"1.0"``, or any other ``digit.digit`` (the connection answers 505).
    http_version: bytes
    #: Lower-cased names, values without surrounding whitespace; order and duplicates kept.
    headers: list[tuple[bytes, bytes]]


def parse_head(head: bytes) -> ParsedHead:
    """Parse one complete request head that ends in CRLF CRLF and has only CRLF line ends.

    Raises:
        HeadError: the head is malformed: 400, or 501 for a transfer coding we do not do.
    """
    line = _REQUEST_LINE.match(head)
    if line is None:
        raise HeadError(400, "illegal request line")
    start = line.end()
    if _FIELD_LINES.fullmatch(head, start) is None:
        raise HeadError(400, "illegal header line")
    headers: list[tuple[bytes, bytes]] = []
    hosts = 0
    if len(head) - start > 2:
        append = headers.append
        for field in head[start:-4].split(b"\r\n"):
            name, _, value = field.partition(b":")
            name = name.lower()
            value = value.strip(b" \t")
            if name in _FRAMING_FIELDS:
                value = _FRAMING_FIELDS[name](value, headers)
                if not value:
                    continue  # an equal repeated Content-Length: merged into the first
            elif name == b"host":
                hosts += 1
            append((name, value))
    method, target, version = line.groups()
    if hosts > 1:
        raise HeadError(400, "more than one Host header")
    if hosts == 0 and version == b"1.1":
        raise HeadError(400, "missing Host header")
    return ParsedHead(method, target, version, headers)


def _content_length(value: bytes, seen: list[tuple[bytes, bytes]]) -> bytes:
    """One length from a Content-Length value; b"" when it repeats an earlier equal one."""
    lengths = {length.strip() for length in value.split(b",")}
    if len(lengths) != 1:
        raise HeadError(400, "conflicting Content-Length values")
    length = lengths.pop()
    if _DIGITS.fullmatch(length) is None or len(length) > _MAX_LENGTH_DIGITS:
        raise HeadError(400, "bad Content-Length")
    for name, earlier in seen:
        if name == b"content-length":
            if earlier != length:
                raise HeadError(400, "conflicting Content-Length headers")
            return b""
    return length


def _transfer_encoding(value: bytes, seen: list[tuple[bytes, bytes]]) -> bytes:
    """``chunked``, the one transfer coding we decode; anything else is a 501."""
    if any(name == b"transfer-encoding" for name, _ in seen):
        raise HeadError(501, "more than one Transfer-Encoding header")
    value = value.lower()
    if value != b"chunked":
        raise HeadError(501, "only Transfer-Encoding: chunked is supported")
    return value


#: The fields whose values decide how the body is framed, checked as they are met, in
#: order, so the first bad one decides the status (as in h11).
_FRAMING_FIELDS = {
    b"content-length": _content_length,
    b"transfer-encoding": _transfer_encoding,
}
