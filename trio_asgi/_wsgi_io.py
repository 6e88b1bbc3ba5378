"""The WSGI side of the bridge, used in the app's thread (PEP 3333).

:class:`InputStream` is ``wsgi.input``: it holds at most one received chunk (plus
what a ``read(n)`` or ``readline()`` asked for) and pulls the next one from the
event loop only when the app reads past it, so an upload the app reads slowly is
slowed down at the socket, never buffered.

:class:`Responder` is ``start_response`` and its ``write()``, and sends the app's
iterable chunk by chunk: each chunk is one call into the event loop that returns
once the bytes are handed to the socket, so a slow client stalls this thread, not
the server. A client that left makes that call raise
:class:`~trio_asgi.ClientDisconnected` (an :class:`OSError`), which stops the
iteration; :func:`call_app` always calls the iterable's ``close()``.

The end of the body is not sent from the thread: :func:`call_app` returns it (with
the head, if nothing was sent yet) for the event loop to send once the thread is
done. A one-element list, the usual small response, then costs no call into the
event loop at all; a list sends all but its last element from the thread.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import IO, Any, TypeAlias

#: ``(type, value, traceback)`` as :func:`sys.exc_info` returns it.
ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None]
#: Pulls the next request-body chunk: ``(bytes, more_body)``.
Pull: TypeAlias = Callable[[], tuple[bytes, bool]]
#: ``(status, headers)`` of a response.
Head: TypeAlias = tuple[int, list[tuple[bytes, bytes]]]
#: Sends the head if given, then a body chunk; ``more`` False ends the body.
Push: TypeAlias = Callable[[Head | None, bytes, bool], None]
#: The end of a response, left to the event loop: the head if not sent yet, the last chunk.
Final: TypeAlias = tuple[Head | None, bytes]
WSGIApp: TypeAlias = Callable[[dict[str, Any], Callable[..., Callable[[bytes], None]]], Any]

_STATUS = re.compile(r"[1-9][0-9]{2} ")
_errors_logger = logging.getLogger("trio_asgi.wsgi")


class InputStream:
    """``wsgi.input``: the request body, pulled from the event loop as the app reads."""

    __slots__ = ("_buffer", "_done", "_pull")

    def __init__(self, pull: Pull) -> None:
        self._pull = pull
        self._buffer = bytearray()
        self._done = False

    def _fill(self) -> bool:
        """Append the next non-empty chunk to the buffer; False at the end of the body."""
        while not self._done:
            chunk, more = self._pull()
            self._done = not more
            if chunk:
                self._buffer += chunk
                return True
        return False

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (fewer only at the end of the body); all of it if negative."""
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(len(self._buffer))
        while len(self._buffer) < size and self._fill():
            pass
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        """One line with its ``\\n``, or up to ``size`` bytes of it."""
        limit = size if size is not None and size >= 0 else None
        searched = 0
        while True:
            newline = self._buffer.find(b"\n", searched)
            if newline >= 0:
                end = newline + 1
                return self._take(end if limit is None else min(end, limit))
            if limit is not None and len(self._buffer) >= limit:
                return self._take(limit)
            searched = len(self._buffer)
            if not self._fill():
                return self._take(len(self._buffer))

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """The remaining lines; stops once ``hint`` bytes were read, if it is positive."""
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class ErrorStream:
    """``wsgi.errors``: each complete line is logged on ``trio_asgi.wsgi`` at ERROR."""

    __slots__ = ("_partial",)

    def __init__(self) -> None:
        self._partial = ""

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            _errors_logger.error("%s", line)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._partial:
            _errors_logger.error("%s", self._partial)
            self._partial = ""


class FileWrapper:
    """``wsgi.file_wrapper``: a file sent in blocks through the ordinary body path."""

    __slots__ = ("block_size", "file")

    def __init__(self, file: IO[bytes], block_size: int = 64 * 1024) -> None:
        self.file = file
        self.block_size = block_size

    def __iter__(self) -> Iterator[bytes]:
        while block := self.file.read(self.block_size):
            yield block

    def close(self) -> None:
        self.file.close()


class Responder:
    """``start_response``, ``write()`` and the iteration for one request."""

    __slots__ = ("_head", "_push", "headers_sent")

    def __init__(self, push: Push) -> None:
        self._push = push
        self._head: Head | None = None
        self.headers_sent = False

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.headers_sent:
                    # PEP 3333: too late to replace the response; re-raise the app's error.
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the frame <-> traceback cycle
        elif self._head is not None:
            raise RuntimeError("start_response() called again without exc_info")
        self._head = (_parse_status(status), _encode_headers(headers))
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write()`` callable: sends ``data`` now."""
        if not isinstance(data, bytes):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        if data:
            self._send(data, more=True)

    def send_iterable(self, result: Iterable[bytes]) -> Final:
        """Send the app's iterable but its end, and return the end (see the module doc)."""
        last = b""
        if type(result) is list and result:
            *result, last = result  # known and in memory: its last element ends the body
            if not isinstance(last, bytes):
                raise TypeError(f"the WSGI app returned {type(last).__name__}, not bytes")
        for chunk in result:
            if not isinstance(chunk, bytes):
                raise TypeError(f"the WSGI app yielded {type(chunk).__name__}, not bytes")
            if chunk:
                self._send(chunk, more=True)
        return self.final(last)

    def final(self, body: bytes) -> Final:
        if self.headers_sent:
            return None, body
        if self._head is None:
            raise RuntimeError("the WSGI app returned before calling start_response()")
        self.headers_sent = True
        return self._head, body

    def _send(self, data: bytes, *, more: bool) -> None:
        if self.headers_sent:
            self._push(None, data, more)
            return
        if self._head is None:
            raise RuntimeError("the WSGI app sent body bytes before calling start_response()")
        self.headers_sent = True
        self._push(self._head, data, more)


def call_app(app: WSGIApp, environ: dict[str, Any], responder: Responder) -> Final:
    """Run one WSGI request in this thread; ``close()`` is called on every path.

    Returns:
        The end of the response, for the event loop to send.
    """
    result = app(environ, responder.start_response)
    try:
        return responder.send_iterable(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def _parse_status(status: object) -> int:
    if not isinstance(status, str) or not _STATUS.match(status):
        raise ValueError(f"WSGI status must look like '200 OK', got {status!r}")
    return int(status[:3])


def _encode_headers(headers: object) -> list[tuple[bytes, bytes]]:
    if type(headers) is not list:
        raise TypeError(f"WSGI headers must be a list, got {type(headers).__name__}")
    encoded: list[tuple[bytes, bytes]] = []
    for item in headers:
        if type(item) is not tuple or len(item) != 2:
            raise TypeError(f"WSGI header {item!r} is not a (name, value) tuple")
        name, value = item
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"WSGI header {item!r}: name and value must be str")
        try:
            encoded.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        except UnicodeEncodeError:
            raise ValueError(f"WSGI header {item!r} is not latin-1") from None
    return encoded
