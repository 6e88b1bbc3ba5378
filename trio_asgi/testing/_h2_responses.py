"""What the HTTP/2 test client reads back: one stream's response, and the server's GOAWAY."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._responses import only_header


@dataclass
class TestH2Response:
    """One HTTP/2 stream's response, as the client read it.

    Attributes:
        stream_id: The stream it answered.
        status: The ``:status`` (0 while no final response head came).
        headers: The header fields (no pseudo-headers), in order.
        body: The DATA bytes received.
        trailers: The trailer fields, if the server ended with a HEADERS frame.
        informational: ``(status, headers)`` of each ``1xx`` response before it.
        complete: The server ended the stream (END_STREAM).
        reset_code: The error code of the server's RST_STREAM, if it reset the
            stream (a refused or malformed request, or an app that failed mid-body).
    """

    __test__ = False  # not a pytest test class, despite the name

    stream_id: int
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    informational: list[tuple[int, list[tuple[bytes, bytes]]]] = field(default_factory=list)
    complete: bool = False
    reset_code: int | None = None

    @property
    def finished(self) -> bool:
        """The stream is over: ended or reset."""
        return self.complete or self.reset_code is not None

    def header(self, name: bytes | str) -> bytes | None:
        """The value of header ``name`` (any case), or ``None``.

        Raises:
            AssertionError: The header appears more than once.
        """
        return only_header(self.headers, name)


@dataclass(frozen=True)
class GoAway:
    """A GOAWAY the server sent.

    Attributes:
        error_code: Its error code (0: NO_ERROR, a graceful close).
        last_stream_id: The highest stream the server says it processed.
        debug: The additional debug data.
    """

    error_code: int
    last_stream_id: int
    debug: bytes = b""
