"""Helpers for the end-to-end framework tests: a live server and a WebSocket client.

* :func:`serve_app`: ``async with serve_app(app, **config_options) as live`` runs
  :func:`trio_asgi.serve` on ``127.0.0.1:0`` on the test's own event loop (trio or
  asyncio) and yields a :class:`Live` server; it shuts the server down gracefully on
  exit, and fails the test if the block takes longer than :data:`SAFETY_TIMEOUT`.
* :func:`ws_connect`: ``async with ws_connect(live, path) as ws`` gives a
  :class:`WSClient`, a small WebSocket client on anyio streams and wsproto, so one
  client runs on both backends.

The module name is unique on purpose: test modules import it by name, and
``tests/e2e`` is on ``sys.path`` (pytest's default ``prepend`` import mode).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from trio_asgi import Config, Server, serve

#: Seconds a whole test may take once its server is up: a hang fails, never blocks CI.
SAFETY_TIMEOUT = 10.0


# --- the server -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Live:
    """A running server: its handle, and where it listens."""

    server: Server
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@asynccontextmanager
async def serve_app(app: Any, **options: Any) -> AsyncIterator[Live]:
    """Serve ``app`` on 127.0.0.1:0 on the running event loop; shut down gracefully on exit.

    Lifespan is ``on`` unless ``options`` say otherwise (a framework whose startup fails
    then fails the test instead of being skipped over). The whole block is bounded by
    :data:`SAFETY_TIMEOUT`.
    """
    config = Config(
        **{"bind": ("127.0.0.1:0",), "timeout_graceful_shutdown": 2.0, "lifespan": "on", **options}
    )
    with anyio.fail_after(SAFETY_TIMEOUT):
        async with anyio.create_task_group() as tg:
            server: Server = await tg.start(serve, app, config)
            host, _, port = server.addresses[0].rpartition(":")
            try:
                yield Live(server, host, int(port))
            finally:
                server.shutdown()


# --- a WebSocket client -----------------------------------------------------------------------


class WSClosed(Exception):
    """The server closed the WebSocket: its close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class WSRejected(Exception):
    """The server answered the handshake with an HTTP response instead of ``101``."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers
        self.body = body


class WSClient:
    """One client WebSocket connection: whole messages in and out, pings answered."""

    def __init__(self, stream: anyio.abc.ByteStream, ws: WSConnection) -> None:
        self._stream = stream
        self._ws = ws
        self._pending: list[Any] = []
        #: The subprotocol the server chose, if any.
        self.subprotocol: str | None = None
        self.headers: list[tuple[bytes, bytes]] = []

    async def _flush(self, event: Any) -> None:
        await self._stream.send(self._ws.send(event))

    async def _next_event(self) -> Any:
        while not self._pending:
            data = await self._stream.receive()
            self._ws.receive_data(data)
            self._pending.extend(self._ws.events())
        return self._pending.pop(0)

    async def handshake(self, host: str, path: str, subprotocols: Sequence[str]) -> None:
        await self._flush(Request(host=host, target=path, subprotocols=list(subprotocols)))
        event = await self._next_event()
        if isinstance(event, AcceptConnection):
            self.subprotocol = event.subprotocol
            self.headers = list(event.extra_headers)
            return
        assert isinstance(event, RejectConnection), event
        body = b""
        if event.has_body:
            while True:
                data = await self._next_event()
                assert isinstance(data, RejectData)
                body += data.data
                if data.body_finished:
                    break
        raise WSRejected(event.status_code, list(event.headers), body)

    async def send(self, message: str | bytes) -> None:
        event = TextMessage(message) if isinstance(message, str) else BytesMessage(message)
        await self._flush(event)

    async def receive(self) -> str | bytes:
        """The next whole message.

        Raises:
            WSClosed: the server closed the connection (we answered its close frame).
        """
        text: list[str] = []
        data: list[bytes] = []
        while True:
            event = await self._next_event()
            if isinstance(event, Ping):
                await self._flush(event.response())
            elif isinstance(event, CloseConnection):
                await self._flush(event.response())
                raise WSClosed(event.code, event.reason or "")
            elif isinstance(event, TextMessage):
                text.append(event.data)
                if event.message_finished:
                    return "".join(text)
            elif isinstance(event, BytesMessage):
                data.append(bytes(event.data))
                if event.message_finished:
                    return b"".join(data)

    async def close(self, code: int = 1000, reason: str = "") -> WSClosed:
        """Send a close frame and wait for the server's answer (messages before it dropped)."""
        await self._flush(CloseConnection(code=code, reason=reason))
        while True:
            event = await self._next_event()
            if isinstance(event, CloseConnection):
                return WSClosed(event.code, event.reason or "")


@asynccontextmanager
async def ws_connect(
    live: Live, path: str = "/", *, subprotocols: Sequence[str] = ()
) -> AsyncIterator[WSClient]:
    """A WebSocket to ``path`` (query string included), closed (TCP) on exit.

    Raises:
        WSRejected: the server answered the handshake with an HTTP response.
    """
    stream = await anyio.connect_tcp(live.host, live.port)
    async with stream:
        client = WSClient(stream, WSConnection(ConnectionType.CLIENT))
        await client.handshake(f"{live.host}:{live.port}", path, subprotocols)
        yield client
