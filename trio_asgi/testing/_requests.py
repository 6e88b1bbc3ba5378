"""Requests a test writes by hand: :class:`TestRequest`, serialised without ever refusing.

An ``h11`` client refuses what it considers invalid (a space or non-ASCII character in the
target, a non-Latin-1 header value) with ``LocalProtocolError``, which then surfaces from
the middle of a test. A test client must send what the test asks for, so the bytes are
written here: the target is percent-encoded where it must be, text is encoded, and
the header fields are sent as given.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

#: Characters a request target may carry as they are (RFC 3986 plus ``%`` for what
#: the caller already encoded); anything else is percent-encoded as UTF-8.
_TARGET_SAFE = "".join(
    c for c in string.punctuation + string.ascii_letters + string.digits if c not in '"<>\\^`{|}'
)


class WireRequest(Protocol):
    """Anything with a method and its bytes: :class:`TestRequest`, or a drawn
    :class:`~trio_asgi.testing.strategies.RawRequest`."""

    @property
    def method(self) -> str: ...

    @property
    def data(self) -> bytes: ...


HeaderPairs = Sequence[tuple[str | bytes, str | bytes]]


def as_bytes(value: str | bytes) -> bytes:
    """Text as Latin-1 when it fits (what HTTP/1.1 fields carry), else as UTF-8."""
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def encode_target(target: str) -> bytes:
    """``target`` with spaces, controls and non-ASCII characters percent-encoded (UTF-8)."""
    return quote(target, safe=_TARGET_SAFE).encode("ascii")


@dataclass(frozen=True)
class TestRequest:
    """An HTTP/1.1 request, written as given (it never raises while serialising).

    ``Host`` is added unless given, and ``Content-Length`` (or, with ``chunked``,
    ``Transfer-Encoding: chunked``) when there is a body. Text is encoded: the target
    percent-encoded where needed (``"/café"`` goes as ``/caf%C3%A9``), header names and
    values as Latin-1 when they fit, else UTF-8. Header bytes are sent exactly as given,
    so a test can also send what a strict server must refuse.

    Attributes:
        method: The method.
        target: The request target, e.g. ``"/items?id=3"``.
        headers: Extra header fields.
        body: The body; a sequence of pieces becomes one chunk each when ``chunked``.
        chunked: Send the body with chunked framing.
    """

    __test__ = False

    method: str = "GET"
    target: str = "/"
    headers: HeaderPairs = ()
    body: bytes | Sequence[bytes] = b""
    chunked: bool = False

    @property
    def data(self) -> bytes:
        """The request's bytes on the wire."""
        pieces = [self.body] if isinstance(self.body, bytes) else list(self.body)
        headers = [(as_bytes(name), as_bytes(value)) for name, value in self.headers]
        names = {name.lower() for name, _ in headers}
        if b"host" not in names:
            headers.insert(0, (b"host", b"testserver"))
        if self.chunked:
            if b"transfer-encoding" not in names:
                headers.append((b"transfer-encoding", b"chunked"))
            body = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"
        else:
            body = b"".join(pieces)
            if body and b"content-length" not in names:
                headers.append((b"content-length", b"%d" % len(body)))
        request_line = b"%b %b HTTP/1.1\r\n" % (as_bytes(self.method), encode_target(self.target))
        lines = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        return request_line + lines + b"\r\n" + body
