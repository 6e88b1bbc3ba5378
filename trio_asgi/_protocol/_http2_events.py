"""The events the HTTP/2 core hands the I/O layer: ours, frozen, no h2 types in them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from h2.errors import ErrorCodes

from ._http2_request import H2RequestHead


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new stream: start one ASGI cycle for it. ``end_stream``: no body follows."""

    stream_id: int
    head: H2RequestHead
    end_stream: bool


@dataclass(frozen=True, slots=True)
class BodyReceived:
    """Request body bytes. Report them read with ``body_consumed`` to reopen the window."""

    stream_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class BodyEnded:
    """The request is complete; ``trailers`` are the request trailers, if any."""

    stream_id: int
    trailers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class RequestRejected:
    """A request refused before the app (a 4xx/501 on the stream, or a reset); log it."""

    stream_id: int
    status: int | None
    error_code: ErrorCodes | None
    reason: str


@dataclass(frozen=True, slots=True)
class StreamReset:
    """The stream ended abruptly: cancel its app, whose ``receive()`` gets ``http.disconnect``.

    ``by_peer``: the client sent RST_STREAM; otherwise we reset it because of the
    client's frames (a flow-control or stream-state error).
    """

    stream_id: int
    error_code: ErrorCodes | int
    by_peer: bool


@dataclass(frozen=True, slots=True)
class WindowOpened:
    """Send window grew: on one stream, or (``stream_id`` None) the whole connection
    or every stream (a new SETTINGS_INITIAL_WINDOW_SIZE). Room in the output bound is
    the writer's to signal: it knows when it drained ``data_to_send()``."""

    stream_id: int | None


@dataclass(frozen=True, slots=True)
class ConnectionTerminated:
    """No new streams will be served.

    ``graceful`` (a client's GOAWAY with NO_ERROR): the ``in_flight`` streams may
    finish, then close. Otherwise cancel every stream's app, write what
    ``data_to_send()`` holds (our GOAWAY, if we ended it) and close.
    """

    error_code: ErrorCodes | int
    by_peer: bool
    last_stream_id: int
    in_flight: tuple[int, ...]
    graceful: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ShutdownComplete:
    """Our second GOAWAY is queued: wait for ``in_flight`` streams, then close."""

    last_stream_id: int
    in_flight: tuple[int, ...]


H2Event: TypeAlias = (
    RequestReceived
    | BodyReceived
    | BodyEnded
    | RequestRejected
    | StreamReset
    | WindowOpened
    | ConnectionTerminated
    | ShutdownComplete
)
