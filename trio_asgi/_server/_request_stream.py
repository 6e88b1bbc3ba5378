"""The seam between one request cycle and the protocol that carries it.

An :class:`~._http_cycle.HTTPCycle` knows ASGI (the scope, ``receive``,
``send``, the message order, the exception boundary around the app) and not the
wire. What it needs from the wire is :class:`RequestStream`: read the request
body a chunk at a time, write a response head, body and trailers, answer with an
error reply of our own, wait for the client to go. HTTP/1.1 implements it over
one connection, one request after another
(:class:`~._http11_stream.HTTP11Stream`); an HTTP/2 stream implements it over
one stream of a multiplexed connection (body chunks granted by flow control,
trailers as a HEADERS frame). Neither keep-alive nor framing is the cycle's
business: it runs the app and *returns* a :class:`CycleResult`, and the
connection decides what happens next.

What the cycle needs besides the stream comes in one frozen
:class:`CycleContext`, made once per connection.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from .._protocol._http11_request import RequestHead
from ._extensions import NO_EXTENSIONS, Extensions
from ._state import ServerState


@dataclass(frozen=True, slots=True)
class CycleContext:
    """What a request cycle needs to know about its connection; one per connection."""

    #: The server's app, config, counters and lifespan state.
    state: ServerState
    #: ``"http"`` or ``"https"``.
    scheme: str
    #: The scope's ``client`` (None when unknown).
    client: tuple[str, int] | None
    #: The scope's ``server`` (``(path, None)`` on a unix socket; None when unknown).
    server: tuple[str, int | None] | None
    #: The ASGI extensions the connection offers (none unless its protocol says so).
    extensions: Extensions = NO_EXTENSIONS


class CycleEnd(enum.Enum):
    """How a request cycle ended, as far as the stream under it is concerned."""

    #: The response went out whole: the stream (connection) may carry on.
    COMPLETE = enum.auto()
    #: We answered for the app with an error reply: let the client read it, then close.
    ANSWERED = enum.auto()
    #: The response cannot be finished (the app failed after it started): close (HTTP/2:
    #: reset the stream).
    ABANDONED = enum.auto()
    #: The client went away.
    GONE = enum.auto()


@dataclass(frozen=True, slots=True)
class CycleResult:
    """What a request cycle returns: how it ended, and why (for the debug log)."""

    end: CycleEnd
    reason: str


#: The results a cycle returns (made once: a cycle allocates none).
COMPLETED: Final = CycleResult(CycleEnd.COMPLETE, "the response is complete")
APP_RAISED: Final = CycleResult(CycleEnd.ANSWERED, "the app raised")
APP_RETURNED_EARLY: Final = CycleResult(CycleEnd.ANSWERED, "the app returned early")
APP_RAISED_MIDWAY: Final = CycleResult(
    CycleEnd.ABANDONED, "the app raised after the response started"
)
INCOMPLETE: Final = CycleResult(CycleEnd.ABANDONED, "the app returned with the response unfinished")
REQUEST_REFUSED: Final = CycleResult(CycleEnd.ANSWERED, "the request body was refused")
CLIENT_GONE: Final = CycleResult(CycleEnd.GONE, "the client went away")


class RequestStream(Protocol):
    """The protocol side of one request: what a cycle reads and writes through.

    Writes return once the bytes are handed to the transport (the app's
    backpressure); a client that is gone makes them raise
    :class:`~trio_asgi.ClientDisconnected`. Response-shaped errors (a bad header,
    more body than declared) raise :class:`~trio_asgi.ASGIProtocolError` before
    anything is written.
    """

    @property
    def request(self) -> RequestHead:
        """The request head."""

    @property
    def accepts_trailers(self) -> bool:
        """Response trailers can be sent (the ``http.response.trailers`` extension)."""

    @property
    def body_complete(self) -> bool:
        """The whole request body has been handed out by :meth:`read_body`."""

    @property
    def disconnected(self) -> bool:
        """The client is gone or the request cannot be read further: no more writes."""

    @property
    def broken(self) -> bool:
        """The transport under the stream failed: nothing more can be written."""

    @property
    def response_complete(self) -> bool:
        """The final piece of the response went out."""

    app_running: bool
    """Set by the cycle while the app is called (a stream may watch its client then)."""

    @property
    def nothing_sent(self) -> bool:
        """No byte of the response has reached the transport yet."""

    @property
    def answered(self) -> int:
        """The status of an error reply the stream sent on its own (0: none)."""

    @property
    def status(self) -> int:
        """The status of the response started or answered (0: none yet), for the access log."""

    @property
    def bytes_sent(self) -> int:
        """Response bytes handed to the transport, for the access log."""

    @property
    def body_received(self) -> int:
        """Request body bytes read so far, for the metrics."""

    @property
    def response_headers(self) -> Sequence[tuple[bytes, bytes]]:
        """The headers of the response started (none for an error reply), for the access log."""

    async def read_body(self) -> bytes | None:
        """The next chunk of the request body (``b""`` for an empty one).

        Returns:
            None if the body cannot be read: the client went away, or the stream
            answered with an error reply of its own (:attr:`answered`: too large,
            too slow, malformed).
        """

    async def send_head(
        self, status: int, headers: list[tuple[bytes, bytes]], *, trailers: bool
    ) -> None:
        """Start the response (it may be held back to go out with the first body chunk)."""

    async def send_body(self, data: bytes, *, final: bool) -> None:
        """Response body bytes; ``final`` ends the response unless trailers follow."""

    async def send_file(
        self, fd: int, offset: int, count: int, *, final: bool, sized: bool
    ) -> None:
        """Body bytes from the file ``fd`` (``count`` from ``offset``), as :meth:`send_body`.

        With ``sized`` the file is the whole body (pathsend): a head not yet sent that
        declared no length gets ``Content-Length: count``. Only called where the
        connection's :class:`CycleContext` advertises the file extensions.
        """

    async def send_early_hint(self, links: list[bytes]) -> None:
        """A ``103 Early Hints`` response; dropped where it cannot go (HTTP/1.0, too late)."""

    async def send_trailers(self, headers: list[tuple[bytes, bytes]]) -> None:
        """End the response with trailers (dropped where the client cannot take them)."""

    async def send_error(self, status: int) -> bool:
        """Answer with an error reply of our own if nothing was sent; True if it was."""

    async def wait_disconnected(self) -> None:
        """Return once the client is gone or the response is complete; never reads body bytes
        that nobody asked for beyond a bound."""
