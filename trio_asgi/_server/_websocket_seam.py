"""What a WebSocket session runs over: the transport it reads and writes, and how the
app's answer to the opening handshake goes out.

HTTP/1.1 gives the session the connection's :class:`~._transport.Transport` and
:class:`HTTP11Answers` (the 101, 403 and denial responses as bytes); HTTP/2 gives it one
stream and answers with HEADERS and DATA (:mod:`._http2_websocket`, RFC 8441).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from .._protocol._websocket import WebSocketConnection


class WebSocketTransport(Protocol):
    """What the session reads and writes: a connection's :class:`~._transport.Transport`
    (HTTP/1.1), or one HTTP/2 stream (RFC 8441)."""

    @property
    def broken(self) -> bool: ...
    def mark_broken(self) -> None: ...
    async def read(self) -> bytes: ...
    async def write(self, data: bytes, timeout: float | None) -> None: ...  # noqa: ASYNC109
    async def close(self) -> None: ...


class HandshakeAnswers(Protocol):
    """How the app's answer to the opening handshake goes out.

    HTTP/1.1 writes the :class:`WebSocketConnection`'s responses (101, 403, the denial
    response) as bytes; HTTP/2 sends HEADERS and DATA on the stream instead. Each
    method moves ``ws`` to its next state (raising as ``ws`` does) and sends the answer.
    """

    async def accept(
        self, ws: WebSocketConnection, subprotocol: str | None, headers: list[tuple[bytes, bytes]]
    ) -> None: ...
    async def reject(self, ws: WebSocketConnection, status: int) -> None: ...
    async def deny_start(
        self, ws: WebSocketConnection, status: int, headers: list[tuple[bytes, bytes]]
    ) -> None: ...
    async def deny_body(self, ws: WebSocketConnection, body: bytes, more_body: bool) -> None: ...


class HTTP11Answers:
    """The handshake answered with HTTP/1.1 responses, written as the session writes frames."""

    __slots__ = ("_write",)

    def __init__(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        self._write = write

    async def accept(
        self,
        ws: WebSocketConnection,
        subprotocol: str | None,
        headers: Iterable[tuple[bytes, bytes]],
    ) -> None:
        await self._write(ws.accept(subprotocol, headers))

    async def reject(self, ws: WebSocketConnection, status: int) -> None:
        await self._write(ws.reject(status))

    async def deny_start(
        self, ws: WebSocketConnection, status: int, headers: Iterable[tuple[bytes, bytes]]
    ) -> None:
        await self._write(ws.deny_start(status, headers))

    async def deny_body(self, ws: WebSocketConnection, body: bytes, more_body: bool) -> None:
        await self._write(ws.deny_body(body, more_body))
