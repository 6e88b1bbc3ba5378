"""One HTTP/1.1 connection: the keep-alive loop around request cycles.

Deadlines: the first byte of a connection (``timeout_first_byte``), then a whole
request head once its first byte arrived (``timeout_request_head``, against
slowloris), then idle time between requests (``timeout_keep_alive``). Each is a
cancel-scope deadline on the one read that waits; there is no timer task.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

from .._protocol._http11 import (
    NEED_DATA,
    BadRequest,
    BodyData,
    EndOfBody,
    HTTP11Connection,
    RequestHead,
)
from .._protocol._ws_handshake import HandshakeRejection, is_websocket_upgrade, validate_handshake
from ._fast_paths import open_transport
from ._http_cycle import DRAIN_LIMIT, HTTPCycle
from ._state import Drainable, ServerState
from ._transport import ReadTimeout, Transport
from ._websocket import WebSocketSession

logger = logging.getLogger("trio_asgi")

DRAIN_TIMEOUT = 1.0


def socket_addresses(
    stream: anyio.abc.ByteStream,
) -> tuple[tuple[str, int] | None, tuple[str, int | None] | None]:
    """The scope's ``client`` and ``server`` for a stream (``[path, None]`` on a unix socket)."""
    remote: Any = stream.extra(SocketAttribute.remote_address, None)
    local: Any = stream.extra(SocketAttribute.local_address, None)
    client = (str(remote[0]), int(remote[1])) if isinstance(remote, tuple) else None
    if isinstance(local, tuple):
        server: tuple[str, int | None] | None = (str(local[0]), int(local[1]))
    elif isinstance(local, str) and local:
        server = (local, None)
    else:
        server = None
    return client, server


class HTTPConnection:
    __slots__ = (
        "client",
        "close_reason",
        "closing",
        "lingering",
        "protocol",
        "scheme",
        "server",
        "state",
        "transport",
        "upgraded",
    )

    def __init__(
        self, stream: anyio.abc.ByteStream, state: ServerState, *, scheme: str = "http"
    ) -> None:
        self.state = state
        self.transport: Transport = open_transport(stream)
        self.protocol = HTTP11Connection(state.limits, state.defaults)
        self.client, self.server = socket_addresses(stream)
        self.scheme = scheme
        #: Close after the current response (shutdown, request limit, or an error).
        self.closing = False
        #: We answered an error: close gently so the client can read the answer.
        self.lingering = False
        #: The protocol this connection was upgraded to (a WebSocket session).
        self.upgraded: Drainable | None = None
        #: Why it closes, when a timeout or error says so (see trio_asgi._metrics).
        self.close_reason: str | None = None

    def begin_shutdown(self) -> None:
        self.closing = True
        self.transport.cancel_idle_read()
        if self.upgraded is not None:
            self.upgraded.begin_shutdown()

    async def run(self) -> None:
        """Serve requests until the connection should close; always closes the stream."""
        state = self.state
        state.connections.add(self)
        try:
            await self._serve_requests()
        finally:
            state.connections.discard(self)
            if self.lingering:
                await self.transport.linger_close()  # cancellable: closes either way
            else:
                await self.transport.close()

    async def _serve_requests(self) -> None:
        state = self.state
        config = state.config
        served = 0
        while True:
            request = await self._next_request(first=not served)
            if request is None:
                return
            served += 1
            if config.max_requests_per_connection is not None:
                self.closing = self.closing or served >= config.max_requests_per_connection
            if await self._refused(request):
                return
            if request.upgrade and config.ws != "none" and is_websocket_upgrade(request.headers):
                await self._serve_websocket(request)
                return
            cycle = HTTPCycle(self, request)
            await cycle.run()
            if cycle.close_after or self.closing or self.transport.broken:
                self.lingering = self.lingering or not self.protocol.request_complete
                return
            if not self.protocol.request_complete and not await self._drain_request_body():
                # Unread body bytes are left: a plain close would send RST, which can
                # destroy the response the client has not read yet.
                self.lingering = True
                return
            if not self.protocol.reusable:
                return
            # Nothing of this request stays referenced while the connection idles.
            del cycle, request
            self.protocol.start_next_cycle()

    async def _refused(self, request: RequestHead) -> bool:
        """Answer requests we refuse before the app is called; True if we did."""
        state = self.state
        max_body = state.config.max_body_size
        if max_body is not None and (request.content_length or 0) > max_body:
            status = 413
        elif state.at_capacity():
            status = 503
        else:
            return False
        await self._reject(status, extra=((b"retry-after", b"1"),) if status == 503 else ())
        self.state.metrics.refused(self, request.method, status)
        self.log_response(request, status, 0, time.monotonic())
        return True

    def log_response(
        self,
        request: RequestHead,
        status: int,
        response_bytes: int,
        started: float,
        response_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """One access-log line for a response to ``request`` (``started``: time.monotonic())."""
        access_log = self.state.access_log
        if access_log.enabled:
            access_log.log_http(
                client=self.client,
                method=request.method,
                raw_target=request.raw_target,
                http_version=request.http_version,
                status=status,
                response_bytes=response_bytes,
                duration=time.monotonic() - started,
                headers=request.headers,
                response_headers=response_headers or (),
            )

    async def _serve_websocket(self, request: RequestHead) -> None:
        handshake = validate_handshake(
            request.method.encode("ascii"), request.http_version.encode("ascii"), request.headers
        )
        if isinstance(handshake, HandshakeRejection):
            logger.debug("bad WebSocket handshake from %s: %s", self.client, handshake.reason)
            self.lingering = True
            await self.transport.write_quietly(
                handshake.to_bytes(self.state.defaults), self.state.config.timeout_write
            )
            return
        session = WebSocketSession(self, request, handshake)
        self.upgraded = session
        await session.run()

    async def _reject(self, status: int, *, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        self.lingering = True
        await self.transport.write_quietly(
            self.protocol.error_response(status, extra=extra), self.state.config.timeout_write
        )

    async def _next_request(self, *, first: bool) -> RequestHead | None:
        """Read until a request head is complete; None when the connection should close."""
        protocol = self.protocol
        config = self.state.config
        head_deadline = math.inf
        event = protocol.next_event()
        while event is NEED_DATA:
            if not protocol.buffered:
                if self.closing:
                    return None
                wait = config.timeout_first_byte if first else config.timeout_keep_alive
                deadline = anyio.current_time() + wait if wait is not None else math.inf
                data = await self.transport.read_idle(deadline)
                if data is None:
                    self.state.metrics.idle_ended(self, first=first)
                    return None
            else:
                # A half-received head is not a request in flight yet: shutdown closes
                # it at once (the read below is cancelled like an idle one).
                if self.closing:
                    return None
                if head_deadline == math.inf and config.timeout_request_head is not None:
                    head_deadline = anyio.current_time() + config.timeout_request_head
                data = await self.transport.read_idle(head_deadline)
                if data is None:
                    if self.state.shutting_down:
                        return None
                    logger.debug("request head timed out (%s)", self.client)
                    self.state.metrics.timed_out(self, "request_head")
                    await self._reject(408)
                    return None
            protocol.receive_data(data)
            event = protocol.next_event()
        if type(event) is RequestHead:
            return event
        if type(event) is BadRequest:
            logger.debug("bad request from %s: %s (%d)", self.client, event.detail, event.status)
            self.state.metrics.protocol_error(self, event.status)
            await self._reject(event.status)
        return None

    async def _drain_request_body(self) -> bool:
        """Read and drop the body the app did not read; True if the connection is reusable."""
        protocol = self.protocol
        budget = DRAIN_LIMIT
        deadline = anyio.current_time() + DRAIN_TIMEOUT
        while not protocol.request_complete:
            event = protocol.next_event()
            if type(event) is BodyData:
                budget -= len(event.data)
                if budget < 0:
                    return False
            elif type(event) is EndOfBody:
                break
            elif event is NEED_DATA:
                try:
                    protocol.receive_data(await self.transport.read(deadline))
                except ReadTimeout:
                    return False
            else:
                return False
        return True
