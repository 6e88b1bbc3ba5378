"""The WebSocket handshake of an HTTP/2 extended CONNECT (RFC 8441), without I/O.

An extended CONNECT with ``:protocol websocket`` (checked by
:func:`._http2_request.check_connect`) opens a WebSocket on its stream. RFC 8441
section 5 drops what HTTP/1.1 needs to upgrade a connection: no ``Upgrade``, no
``Connection``, no ``Sec-WebSocket-Key`` and so no ``Sec-WebSocket-Accept``. What
stays is the version, the subprotocols and the extensions, read exactly as on
HTTP/1.1 (:mod:`._ws_handshake`), so the app sees the same scope on both.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._ws_handshake import (
    WEBSOCKET_VERSION,
    Handshake,
    HandshakeRejection,
    _HandshakeFields,
    _negotiate,
    _reject,
)


def validate_h2_handshake(headers: Iterable[tuple[bytes, bytes]]) -> Handshake | HandshakeRejection:
    """The WebSocket handshake an extended CONNECT carries, or how to refuse it.

    Args:
        headers: The request's regular fields (lower-cased names; no pseudo-headers).

    Returns:
        A :class:`~._ws_handshake.Handshake` (its ``key`` empty: HTTP/2 has none), or
        a rejection: 426 for a ``Sec-WebSocket-Version`` other than 13 (or repeated),
        400 for malformed subprotocol or extension lists.
    """
    fields = _HandshakeFields.collect(list(headers))
    versions = fields.single[b"sec-websocket-version"]
    # RFC 8441 section 5 keeps the version header; a client may leave it out (we speak 13).
    if len(versions) > 1 or (versions and versions[0].strip(b" \t") != WEBSOCKET_VERSION):
        return _reject(
            426,
            "this server speaks WebSocket version 13",
            (b"sec-websocket-version", WEBSOCKET_VERSION),
        )
    return _negotiate(b"", fields)
