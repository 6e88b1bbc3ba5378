"""Which protocol a connection speaks: ALPN over TLS, the preface on a cleartext port.

Over TLS, ALPN decided before any byte (``h2`` is offered first, see
:data:`~._tls.ALPN_PROTOCOLS`). On a cleartext port the first bytes decide: the
HTTP/2 connection preface (prior knowledge, RFC 9113 section 3.3) or anything else,
which HTTP/1.1 reads. HTTP/1.1 is known from its first byte, so this costs an
HTTP/1.1 connection one comparison on its first read and nothing after.
"""

from __future__ import annotations

from typing import Final

import anyio
import anyio.abc
from anyio.streams.tls import TLSAttribute

from .._protocol._h2c import Preface, detect_preface
from ._transport import Transport

#: ALPN's name for HTTP/2 over TLS.
ALPN_H2: Final = "h2"


def alpn_is_h2(stream: anyio.abc.ByteStream) -> bool:
    """Whether the TLS handshake of ``stream`` chose HTTP/2."""
    return stream.extra(TLSAttribute.alpn_protocol, None) == ALPN_H2


async def sniff_preface(
    transport: Transport, first: bytes, deadline: float
) -> tuple[bool, bytes] | None:
    """Read until the first bytes tell HTTP/2's preface from anything else.

    Returns:
        ``(is_http2, bytes read so far)`` for the chosen protocol to parse, or None to
        close (the client sent nothing by ``deadline``, or closed). A read ended
        by a shutdown returns ``(False, bytes)``: HTTP/1.1's wait handles its grace.
    """
    data = first
    while (verdict := detect_preface(data)) is Preface.NEED_MORE:
        got = await transport.read_idle(deadline)
        if got is None:
            if anyio.current_time() >= deadline:
                return None
            return False, data
        if not got:
            return None
        data += got
    return verdict is Preface.HTTP2, data
