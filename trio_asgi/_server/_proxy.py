"""Who is at the other end of a connection: the PROXY header and the trust decision.

:func:`open_peer` runs once per connection, before the first request. With
``proxy_protocol`` on, a trusted peer must start with a PROXY header and an untrusted
one must not; either mistake closes the connection with one log line. The header is
read under the first-byte deadline and never past its size bound (see
:mod:`.._protocol._proxy_protocol`); the bytes after it go to the HTTP parser.

The :class:`Peer` it returns then gives each request its ``client`` and ``scheme``
(:meth:`Peer.request_context`): from the proxy headers when the peer is trusted, else
the connection's own. HTTP/1.1 asks once per request, HTTP/2 once per stream.

With TLS terminated here the PROXY header comes in clear before the handshake, so it
is read from the raw stream first (:func:`read_proxy_header_before_tls`, same rules
and deadline); the bytes after it go to the handshake (:class:`PeerStream`), and the
peer rides along as a stream attribute that :func:`open_peer` then takes as is.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import anyio
import anyio.abc
from anyio import TypedAttributeSet, typed_attribute

from .._config import Config
from .._protocol._forwarded import resolve_proxy_headers
from .._protocol._proxy_protocol import (
    ProxyHeader,
    ProxyHeaderParser,
    ProxyProtocolError,
    Signature,
    detect_signature,
)
from ._request_stream import CycleContext
from ._transport import AnyioTransport, Transport

logger = logging.getLogger("trio_asgi")

Client = tuple[str, int] | None


class Peer:
    """A connection's own client address and scheme, and whether its proxy headers count."""

    __slots__ = ("client", "config", "scheme", "trusted")

    def __init__(self, config: Config, client: Client, scheme: str, *, trusted: bool) -> None:
        self.config = config
        self.client = client
        self.scheme = scheme
        #: Read the proxy headers of this connection's requests.
        self.trusted = trusted and config.proxy_headers

    def resolve(self, headers: Sequence[tuple[bytes, bytes]]) -> tuple[Client, str]:
        """The ``client`` and ``scheme`` of a request with these headers."""
        resolved = resolve_proxy_headers(headers, self.config.trusted_peers)
        if resolved is None:
            return self.client, self.scheme
        return resolved.client or self.client, resolved.scheme or self.scheme

    def request_context(
        self, own: CycleContext, headers: Sequence[tuple[bytes, bytes]]
    ) -> CycleContext:
        """The context of one request (HTTP/1.1 or one HTTP/2 stream) with these headers.

        ``own`` is the connection's context (after any PROXY header). Returns it as is
        for an untrusted peer or a request without proxy headers: no copy per request.
        """
        if not self.trusted:
            return own
        client, scheme = self.resolve(headers)
        if client == own.client and scheme == own.scheme:
            return own
        return replace(own, client=client, scheme=scheme)


async def open_peer(
    transport: Transport,
    config: Config,
    *,
    client: Client,
    server: tuple[str, int | None] | None,
    scheme: str,
    before_tls: Peer | None = None,
) -> tuple[Peer, bytes] | None:
    """Decide who the peer is; with ``proxy_protocol``, read its PROXY header first.

    ``before_tls`` is the peer already decided from a PROXY header read before a TLS
    handshake we terminate (see :class:`PeerStream`): it is taken as it is.

    Returns:
        The peer and the bytes already read that belong to the HTTP parser, or None
        when the connection must close (a missing, malformed or untrusted header).
    """
    unix = server is not None and server[1] is None
    trusted = config.trusted_peers.trusts_peer(client, unix=unix)
    if not config.proxy_protocol:
        return Peer(config, client, scheme, trusted=trusted), b""
    if before_tls is not None:
        return before_tls, b""
    deadline = _first_byte_deadline(config)
    if not trusted:
        data = await _read_untrusted_start(transport, deadline, client)
        if data is None:
            return None
        return Peer(config, client, scheme, trusted=False), data
    parser = ProxyHeaderParser()
    header = await _read_proxy_header(transport, parser, deadline, client)
    if header is None:
        return None
    if header.client is not None:
        client = header.client
        # Proxy headers, if any, now come from the balancer's client: believe them
        # only if that client is itself a trusted proxy.
        trusted = config.trusted_peers.trusts_address(client[0])
    if header.tls:
        scheme = "https"
    return Peer(config, client, scheme, trusted=trusted), parser.leftover


async def read_proxy_header_before_tls(
    stream: anyio.abc.ByteStream,
    config: Config,
    *,
    client: Client,
    server: tuple[str, int | None] | None,
) -> PeerStream | None:
    """For TLS terminated here: decide the peer from the raw stream, before the handshake.

    As :func:`open_peer` (the scheme is ``https``), reading ``stream`` itself. Returns
    the stream to run the handshake over (it gives the bytes read past the header
    first), or None when the connection must close; ``stream`` is then the caller's
    to close.
    """
    opened = await open_peer(
        AnyioTransport(stream), config, client=client, server=server, scheme="https"
    )
    if opened is None:
        return None
    peer, leftover = opened
    return PeerStream(stream, peer, leftover)


class PeerAttribute(TypedAttributeSet):
    """The stream attribute that carries a peer decided before the TLS handshake."""

    #: The :class:`Peer` read from a PROXY header in front of the handshake.
    peer: Peer = typed_attribute()


class PeerStream(anyio.abc.ByteStream):
    """A raw stream after its PROXY header: gives the bytes read past the header first.

    The TLS handshake runs over it, so the ClientHello bytes that came in the same
    segment as the header are not lost; its :class:`PeerAttribute` names the peer.
    """

    __slots__ = ("_leftover", "_peer", "_stream")

    def __init__(self, stream: anyio.abc.ByteStream, peer: Peer, leftover: bytes) -> None:
        self._stream = stream
        self._peer = peer
        self._leftover = leftover

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._leftover:
            data, self._leftover = self._leftover[:max_bytes], self._leftover[max_bytes:]
            return data
        return await self._stream.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        await self._stream.send(item)

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {**self._stream.extra_attributes, PeerAttribute.peer: lambda: self._peer}


def _first_byte_deadline(config: Config) -> float:
    wait = config.timeout_first_byte
    return anyio.current_time() + wait if wait is not None else math.inf


async def _read_proxy_header(
    transport: Transport, parser: ProxyHeaderParser, deadline: float, client: Client
) -> ProxyHeader | None:
    """Read a trusted peer's PROXY header; None (after one log line) if there is none."""
    while True:
        data = await transport.read_idle(deadline)
        if data is None:
            logger.debug("no PROXY header from %s before the first-byte deadline", client)
            return None
        try:
            header = parser.feed(data)
        except ProxyProtocolError as exc:
            if data:
                logger.info("closing a connection from %s: %s", client, exc)
            else:
                logger.debug("closing a connection from %s: %s", client, exc)
            return None
        if header is not None:
            return header


async def _read_untrusted_start(
    transport: Transport, deadline: float, client: Client
) -> bytes | None:
    """The first bytes of an untrusted peer, read until they surely are no PROXY header."""
    data = b""
    while True:
        chunk = await transport.read_idle(deadline)
        if chunk is None:
            return None
        if not chunk:
            # The client left: closed at once, or the HTTP parser sees the end after data.
            return data or None
        data += chunk
        signature = detect_signature(data)
        if signature is Signature.NONE:
            return data
        if signature is not Signature.UNDECIDED:
            logger.info(
                "closing a connection from %s: a PROXY header from a peer that is not in "
                "forwarded_allow_ips",
                client,
            )
            return None
