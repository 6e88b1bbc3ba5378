"""Response pieces shared by every connection: reason phrases, default headers, error replies."""

from __future__ import annotations

import http
import time
from email.utils import formatdate

from .._version import __version__

#: Reason phrases for every status code; unknown codes still get a phrase, since an
#: empty one (``HTTP/1.1 200 ``) makes some clients count the response as failed.
REASON_PHRASES: dict[int, bytes] = {s.value: s.phrase.encode("ascii") for s in http.HTTPStatus}


def reason_phrase(status: int) -> bytes:
    return REASON_PHRASES.get(status) or _CLASS_PHRASES.get(status // 100, b"Unknown")


_CLASS_PHRASES = {
    1: b"Informational",
    2: b"Success",
    3: b"Redirection",
    4: b"Client Error",
    5: b"Server Error",
}

SERVER_HEADER_VALUE = f"trio-asgi/{__version__}".encode("ascii")


class DateHeader:
    """The ``Date`` value, formatted at most once per second (formatdate costs ~5 us)."""

    __slots__ = ("_line", "_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""
        self._line = b""

    def value(self) -> bytes:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._value = formatdate(now, usegmt=True).encode("ascii")
            self._line = b"date: %s\r\n" % self._value
        return self._value

    def line(self) -> bytes:
        """``date: <value>`` CRLF, made with the value."""
        if int(time.time()) != self._second:
            self.value()
        return self._line


class DefaultHeaders:
    """The headers we add to every response the app did not set itself."""

    __slots__ = ("_date", "_fixed", "_fixed_lines", "_names", "date_header")

    def __init__(
        self, *, server_header: bool, date_header: bool, extra: tuple[tuple[str, str], ...]
    ) -> None:
        fixed: list[tuple[bytes, bytes]] = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in extra
        ]
        configured = frozenset(name for name, _ in fixed)
        # A configured Server or Date replaces ours instead of making two of them.
        if server_header and b"server" not in configured:
            fixed.insert(0, (b"server", SERVER_HEADER_VALUE))
        self._fixed = tuple(fixed)
        self._names = frozenset(name for name, _ in fixed)
        #: The fixed headers pre-joined as lines, for the common response that sets none.
        self._fixed_lines = b"".join(b"%s: %s\r\n" % item for item in fixed)
        self.date_header = date_header and b"date" not in configured
        self._date = DateHeader()

    def complete(
        self, headers: list[tuple[bytes, bytes]], present: frozenset[bytes] | set[bytes]
    ) -> None:
        """Append the defaults whose names are not in ``present`` (lower-case names)."""
        if self.date_header and b"date" not in present:
            headers.append((b"date", self._date.value()))
        if self._fixed:
            if present.isdisjoint(self._names):
                headers.extend(self._fixed)
            else:
                headers.extend(item for item in self._fixed if item[0] not in present)

    def lines(self, present: set[bytes]) -> bytes:
        """The defaults whose names are not in ``present`` (lower-case names), as lines."""
        date = self._date.line() if self.date_header and b"date" not in present else b""
        if not self._fixed:
            return date
        if present.isdisjoint(self._names):
            return date + self._fixed_lines
        return date + b"".join(
            b"%s: %s\r\n" % item for item in self._fixed if item[0] not in present
        )


def error_response(
    status: int,
    defaults: DefaultHeaders,
    *,
    http_version: bytes = b"1.1",
    extra_headers: tuple[tuple[bytes, bytes], ...] = (),
    head_request: bool = False,
) -> bytes:
    """A complete plain-text response that closes the connection, for errors we answer ourselves.

    The body is the reason phrase only: never a traceback or any detail from the request.
    It is left out for a HEAD request, whose response never has content (RFC 9112 6.3).
    """
    phrase = reason_phrase(status)
    body = phrase + b"\n"
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),
        *extra_headers,
    ]
    defaults.complete(headers, frozenset(name for name, _ in headers))
    head = b"".join(b"%s: %s\r\n" % item for item in headers)
    version = http_version if http_version in (b"1.0", b"1.1") else b"1.1"
    content = b"" if head_request else body
    return b"HTTP/%s %d %s\r\n%s\r\n%s" % (version, status, phrase, head, content)
