"""One HTTP/1.1 connection: the keep-alive loop around request cycles.

Deadlines: the first byte of a connection (``timeout_first_byte``), then a whole
request head once its first byte arrived (``timeout_request_head``, against
slowloris), then idle time between requests (``timeout_keep_alive``). Each is a
cancel-scope deadline on the one read that waits; there is no timer task.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

from .._config import Config
from .._protocol._h2c import SWITCHING_PROTOCOLS, H2cUpgrade, check_h2c_upgrade
from .._protocol._http11 import (
    NEED_DATA,
    BadRequest,
    BodyData,
    ConnectionInput,
    EndOfBody,
    Fate,
    HTTP11Connection,
    RequestHead,
)
from .._protocol._ws_handshake import HandshakeRejection, is_websocket_upgrade, validate_handshake
from ._extensions import connection_extensions
from ._fast_paths import open_transport
from ._http2_connection import H2Connection
from ._http2_negotiation import alpn_is_h2, sniff_preface
from ._http11_stream import DRAIN_LIMIT, HTTP11Stream
from ._http_cycle import HTTPCycle
from ._proxy import Peer, PeerAttribute, open_peer
from ._request_stream import CycleContext, CycleEnd, CycleResult
from ._state import Drainable, ServerState
from ._transport import ReadTimeout, Transport
from ._websocket import WebSocketSession

logger = logging.getLogger("trio_asgi")

DRAIN_TIMEOUT = 1.0
#: Once a graceful shutdown begins, how long a connection may still take to deliver its
#: next request, counted from when it began waiting for it. A keep-alive client may be
#: sending it right now (it could not know): closing under it would lose it, and a
#: rolling restart must lose nothing, so it is answered with ``Connection: close``
#: instead. A connection idle for longer is closed at once.
SHUTDOWN_REQUEST_GRACE = 1.0


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
    """One HTTP/1.1 connection: reads requests, runs a cycle for each, acts on the lifecycle."""

    __slots__ = (
        "_before_tls",
        "_deadlines",
        "alpn_h2",
        "close_reason",
        "closing",
        "context",
        "protocol",
        "state",
        "stream",
        "transport",
        "upgraded",
    )

    def __init__(
        self, stream: anyio.abc.ByteStream, state: ServerState, *, scheme: str = "http"
    ) -> None:
        self.state = state
        self.transport: Transport = open_transport(stream)
        self.protocol = HTTP11Connection(state.limits, state.defaults)
        client, server = socket_addresses(stream)
        self.context = CycleContext(
            state=state,
            scheme=scheme,
            client=client,
            server=server,
            extensions=connection_extensions(stream, state.config.ssl_certfile),
        )
        self.stream = HTTP11Stream(self.protocol, self.transport, state, client, record=self)
        self._deadlines = _HeadDeadlines(state.config)
        #: The peer a PROXY header named before the TLS handshake (see _proxy.PeerStream).
        self._before_tls = (
            stream.extra(PeerAttribute.peer, None) if state.config.proxy_protocol else None
        )
        #: The protocol this connection was upgraded to (a WebSocket session, HTTP/2).
        self.upgraded: Drainable | None = None
        #: Why it closes, when a timeout or error says so (see trio_asgi._metrics).
        self.close_reason: str | None = None
        #: The server chose to close it (shutdown, request limit), for the close reason.
        self.closing = False
        #: TLS chose HTTP/2 by ALPN.
        self.alpn_h2 = scheme == "https" and state.config.http2 and alpn_is_h2(stream)

    def begin_shutdown(self) -> None:
        self.closing = True
        protocol = self.protocol
        if protocol.fate is Fate.KEEP_ALIVE:
            # Between requests: a request may be on its way (SHUTDOWN_REQUEST_GRACE), to
            # be answered with Connection: close; a connection idle for longer closes now.
            waited = anyio.current_time() - self._deadlines.since
            arriving = waited < SHUTDOWN_REQUEST_GRACE
            protocol.lifecycle.advance(
                ConnectionInput.CLOSE_REQUESTED if arriving else ConnectionInput.CLOSE_NOW
            )
            # Wake the waiting read: it waits again under the grace deadline, or closes.
            self.transport.cancel_idle_read()
        else:
            # Serving: close after the response (see ConnectionState.RESPONDING_LAST).
            protocol.lifecycle.advance(ConnectionInput.CLOSE_REQUESTED)
        if self.upgraded is not None:
            self.upgraded.begin_shutdown()

    def client_departed(self) -> bool:
        stream = self.stream
        if (
            stream.app_running
            and self.protocol.request_complete
            and not stream.disconnected
            and self.transport.peer_closed()
        ):
            logger.debug("client %s left while the app computes: closing", self.context.client)
            stream.peer_gone()
            return True
        return False

    async def close_departed(self) -> None:
        await self.transport.close()

    def mark_held_head(self, mark: int) -> bool:
        upgraded = self.upgraded
        if upgraded is not None:  # HTTP/2 holds heads per stream; a WebSocket holds none
            return isinstance(upgraded, H2Connection) and upgraded.mark_held_head(mark)
        return self.stream.mark_held_head(mark)

    async def release_held_head(self, mark: int, timeout: float) -> None:  # noqa: ASYNC109
        upgraded = self.upgraded
        if isinstance(upgraded, H2Connection):
            await upgraded.release_held_head(mark, timeout)
        elif upgraded is None:
            await self.stream.release_held_head(mark, timeout)

    async def run(self) -> None:
        """Serve requests until the connection should close; always closes the stream."""
        state = self.state
        state.connections.add(self)
        try:
            # The request loop is here, not in a coroutine of its own: while it idles, a
            # connection keeps this frame, _next_request's and the read's (one fewer
            # is ~0.3 KiB less for every idle connection).
            peer = await self._open()
            own = self.context  # the connection's own, after a PROXY header
            served = 0
            while peer is not None:
                request = await self._next_request(first=not served)
                if request is None:
                    break
                served += 1
                if not await self._serve_request(request, own, peer, served):
                    break
                # Nothing of this request stays referenced while the connection idles.
                del request
            if self.stream.pending:
                await self.stream.flush()  # the last pipelined responses
        finally:
            state.connections.discard(self)
            if self.protocol.fate is Fate.LINGER_CLOSE:
                await self.transport.linger_close()  # cancellable: closes either way
            else:
                await self.transport.close()

    async def _serve_request(
        self, request: RequestHead, own: CycleContext, peer: Peer, served: int
    ) -> bool:
        """Serve one request (or the protocol it upgrades to); True to read the next one."""
        config = self.state.config
        protocol = self.protocol
        stream = self.stream
        self.context = peer.request_context(own, request.headers)
        limit = config.max_requests_per_connection
        if limit is not None and served >= limit:
            self.closing = True
            protocol.lifecycle.advance(ConnectionInput.CLOSE_REQUESTED)
        if await self._refused(request):
            return False
        if request.upgrade and stream.pending:
            await stream.flush()  # the responses before it, before another protocol's
        if request.upgrade and config.http2 and await self._upgrade_h2c(request, own, peer):
            return False
        if request.upgrade and config.ws != "none" and is_websocket_upgrade(request.headers):
            await self._serve_websocket(request)
            return False
        stream.begin(request)
        fate = self._after_cycle(await HTTPCycle(self.context, stream).run())
        if fate is Fate.DRAIN:
            fate = await self._drain_request_body()
        if fate is not Fate.KEEP_ALIVE and fate is not Fate.FINISH_ARRIVING:
            return False
        stream.end()
        protocol.start_next_cycle()
        return True

    async def _open(self) -> Peer | None:
        """What comes before the first HTTP/1.1 request: a PROXY header, HTTP/2 by ALPN or
        by its preface. The peer to serve over HTTP/1.1, or None when that is over.

        :attr:`context` then names the client a PROXY header gave, and the bytes read
        past the opening are in the protocol's buffer.
        """
        config = self.state.config
        own = self.context
        opened = await open_peer(
            self.transport,
            config,
            client=own.client,
            server=own.server,
            scheme=own.scheme,
            before_tls=self._before_tls,
        )
        if opened is None:
            return None
        peer, early_bytes = opened
        if (peer.client, peer.scheme) != (own.client, own.scheme):  # from a PROXY header
            own = self.context = replace(own, client=peer.client, scheme=peer.scheme)
        if self.alpn_h2:
            await self._serve_http2(early_bytes, peer)
            return None
        if config.http2 and own.scheme == "http":
            self._deadlines.reset(first=True)  # a shutdown meanwhile counts its grace from here
            wait = config.timeout_first_byte
            deadline = anyio.current_time() + wait if wait is not None else math.inf
            sniffed = await sniff_preface(self.transport, early_bytes, deadline)
            if sniffed is None:
                return None
            http2, early_bytes = sniffed
            if http2:
                await self._serve_http2(early_bytes, peer)
                return None
        if early_bytes:
            self.protocol.receive_data(early_bytes)
        return peer

    def _after_cycle(self, result: CycleResult) -> Fate:
        """Feed what the cycle's end means for the connection to its lifecycle table."""
        protocol = self.protocol
        lifecycle = protocol.lifecycle
        end = result.end
        if end is CycleEnd.ABANDONED:
            logger.debug("closing connection: %s", result.reason)
            lifecycle.advance(
                ConnectionInput.ABANDONED
                if protocol.request_complete
                else ConnectionInput.ABANDONED_BODY_LEFT
            )
        elif end is CycleEnd.GONE or self.transport.broken:
            lifecycle.advance(ConnectionInput.CLOSE_NOW)
        elif end is CycleEnd.ANSWERED:
            logger.debug("closing connection: %s", result.reason)
        return lifecycle.fate

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
        state.metrics.refused(self, request.method, status)
        self._log_refusal(request, status)
        return True

    def _log_refusal(self, request: RequestHead, status: int) -> None:
        access_log = self.state.access_log
        if access_log.enabled:
            access_log.log_http(
                client=self.context.client,
                method=request.method,
                raw_target=request.raw_target,
                http_version=request.http_version,
                status=status,
                response_bytes=0,
                duration=0.0,
                headers=request.headers,
            )

    async def _serve_websocket(self, request: RequestHead) -> None:
        handshake = validate_handshake(
            request.method.encode("ascii"), request.http_version.encode("ascii"), request.headers
        )
        if isinstance(handshake, HandshakeRejection):
            logger.debug(
                "bad WebSocket handshake from %s: %s", self.context.client, handshake.reason
            )
            self.state.rejections.rejected(
                self.context.client, handshake.status, "WebSocket handshake"
            )
            self.protocol.lifecycle.advance(ConnectionInput.ERROR_ANSWERED)
            await self.transport.write_quietly(
                handshake.to_bytes(self.state.defaults), self.state.config.timeout_write
            )
            return
        self.protocol.lifecycle.advance(ConnectionInput.UPGRADED)
        session = WebSocketSession(
            self.context, self.transport, request, handshake, self.protocol.detach(), record=self
        )
        self.upgraded = session
        result = await session.run()  # whatever it was, the connection was handed over
        logger.debug("WebSocket ended (%s): closing the connection", result.reason)

    async def _upgrade_h2c(self, request: RequestHead, own: CycleContext, peer: Peer) -> bool:
        """Serve an ``Upgrade: h2c`` request over HTTP/2 if it is valid; True if it was.

        ``own`` is the connection's context: each stream resolves its own proxy headers.
        """
        has_body = request.chunked or bool(request.content_length)
        tls = own.scheme == "https"  # this hop's, not the one a proxy header names
        upgrade = check_h2c_upgrade(request.headers, has_body=has_body, tls=tls)
        if not isinstance(upgrade, H2cUpgrade):
            return False  # served over HTTP/1.1, as RFC 9113 allows
        self.protocol.lifecycle.advance(ConnectionInput.UPGRADED)
        rest = self.protocol.detach()
        await self.transport.write_quietly(SWITCHING_PROTOCOLS, self.state.config.timeout_write)
        if self.transport.broken:
            return True
        upgraded = (upgrade.settings, replace(request, http_version="2"))  # answered over h2
        connection = H2Connection(self.transport, own, self.state, peer=peer, upgraded=upgraded)
        self.upgraded = connection
        await connection.run(rest)
        return True

    async def _serve_http2(self, first_bytes: bytes, peer: Peer) -> None:
        connection = H2Connection(self.transport, self.context, self.state, peer=peer)
        self.upgraded = connection
        await connection.run(first_bytes)

    async def _reject(self, status: int, *, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        self.protocol.lifecycle.advance(ConnectionInput.ERROR_ANSWERED)
        await self.transport.write_quietly(
            self.stream.take_pending() + self.protocol.error_response(status, extra=extra),
            self.state.config.timeout_write,
        )

    async def _next_request(self, *, first: bool) -> RequestHead | None:
        """Read until a request head is complete; None when the connection should close."""
        protocol = self.protocol
        deadlines = self._deadlines
        deadlines.reset(first=first)
        event = protocol.next_event()
        while event is NEED_DATA:
            deadline = deadlines.next(protocol.fate, buffered=protocol.buffered > 0)
            if deadline is None:
                return None  # asked to close, and no request is arriving
            if self.stream.pending:
                await self.stream.flush()  # finished responses go before we wait
                if self.transport.broken:
                    protocol.lifecycle.advance(ConnectionInput.CLOSE_NOW)
                    return None
            data = await self.transport.read_idle(deadline)
            if data is None:
                if deadlines.head_timed_out(protocol.fate, buffered=protocol.buffered > 0):
                    logger.debug("request head timed out (%s)", self.context.client)
                    self.state.metrics.timed_out(self, "request_head")
                    await self._reject(408)
                    return None
                if deadlines.woken_for_shutdown(protocol.fate):
                    continue  # wait again, under the shutdown's grace deadline
                self.state.metrics.idle_ended(self, closing=self.closing, first=first)
                protocol.lifecycle.advance(ConnectionInput.CLOSE_NOW)
                return None
            protocol.receive_data(data)
            event = protocol.next_event()
        if type(event) is RequestHead:
            return event
        if type(event) is BadRequest:
            logger.debug(
                "bad request from %s: %s (%d)", self.context.client, event.detail, event.status
            )
            self.state.rejections.rejected(self.context.client, event.status, "request head")
            self.state.metrics.protocol_error(self, event.status)
            await self._reject(event.status)
        else:
            protocol.lifecycle.advance(ConnectionInput.CLOSE_NOW)  # the client closed its side
        return None

    async def _drain_request_body(self) -> Fate:
        """Read and drop the body the app did not read, so the connection can be reused."""
        protocol = self.protocol
        budget = DRAIN_LIMIT
        deadline = anyio.current_time() + DRAIN_TIMEOUT
        while not protocol.request_complete:
            event = protocol.next_event()
            if type(event) is BodyData:
                budget -= len(event.data)
                if budget < 0:
                    break
            elif type(event) is EndOfBody:
                return protocol.fate  # the lifecycle saw the end of the body
            elif event is NEED_DATA:
                try:
                    protocol.receive_data(await self.transport.read(deadline))
                except ReadTimeout:
                    break
            else:
                break
        if protocol.request_complete:
            return protocol.fate
        # Unread body bytes are left: a plain close would send RST, which can destroy
        # the response the client has not read yet.
        protocol.lifecycle.advance(ConnectionInput.DRAIN_FAILED)
        return protocol.fate


class _HeadDeadlines:
    """The deadline of each read while a connection waits for a request head.

    The first byte of a connection gets ``timeout_first_byte``, a kept-alive one
    ``timeout_keep_alive``, a head that has begun ``timeout_request_head``. Once the
    connection is asked to close while a next request may be on its way (a shutdown
    that began while it waited, or a response that said keep-alive but ended during
    one), that request gets until :data:`SHUTDOWN_REQUEST_GRACE` after the wait began
    to arrive whole; otherwise a connection asked to close does not wait at all.
    """

    __slots__ = ("_config", "_first", "_head", "_last", "since")

    def __init__(self, config: Config) -> None:
        self._config = config
        self._first = True
        self._head = math.inf
        self._last = math.inf
        #: When the connection began waiting for this request head.
        self.since = -math.inf

    def reset(self, *, first: bool) -> None:
        """Start on the next request head (one object per connection: nothing allocated)."""
        self._first = first
        self._head = math.inf
        self._last = math.inf
        self.since = anyio.current_time()

    def next(self, fate: Fate, *, buffered: bool) -> float | None:
        """The deadline of the next read, or None to close now."""
        config = self._config
        if fate is Fate.FINISH_ARRIVING:
            self._last = self.since + SHUTDOWN_REQUEST_GRACE
            return min(self._last, self._head_deadline()) if buffered else self._last
        if fate is not Fate.KEEP_ALIVE:
            return None
        if buffered:
            return self._head_deadline()
        wait = config.timeout_first_byte if self._first else config.timeout_keep_alive
        return anyio.current_time() + wait if wait is not None else math.inf

    def _head_deadline(self) -> float:
        timeout = self._config.timeout_request_head
        if self._head == math.inf and timeout is not None:
            self._head = anyio.current_time() + timeout
        return self._head

    def head_timed_out(self, fate: Fate, *, buffered: bool) -> bool:
        """A read came back empty because a begun head took too long (not a shutdown)."""
        return buffered and fate is Fate.KEEP_ALIVE

    def woken_for_shutdown(self, fate: Fate) -> bool:
        """A read came back empty because a shutdown began: wait again, under the grace."""
        return fate is Fate.FINISH_ARRIVING and self._last == math.inf
