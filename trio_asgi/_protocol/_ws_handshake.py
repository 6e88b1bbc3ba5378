"""The server side of the WebSocket opening handshake (RFC 6455 section 4.2), without I/O.

The HTTP/1.1 layer parses the request with h11; :func:`is_websocket_upgrade`
tells it whether the request asks for a WebSocket, and :func:`validate_handshake`
checks everything RFC 6455 requires of the client before the app is called. It
returns either a :class:`Handshake` (what the connection needs: the key, the
offered subprotocols and permessage-deflate offers) or a
:class:`HandshakeRejection` (the HTTP response to send instead, then close).

Untrusted header bytes never raise here: non-ASCII, malformed lists, repeated
single-valued headers all become a 400 (a non-ASCII ``Sec-WebSocket-Protocol``
crashed a peer's worker). The response for the 101 itself is built by
:class:`~._websocket.WebSocketConnection`, which shares :func:`render_response`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from wsproto.utilities import generate_accept_token

from .._errors import ASGIProtocolError
from ._response import DefaultHeaders, reason_phrase

#: RFC 9110 token characters: the grammar of subprotocols, extension names and parameters.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN_RE = re.compile(_TOKEN)
_BTOKEN_RE = re.compile(_TOKEN.encode("ascii"))
_QUOTED_RE = re.compile(r'"((?:[^"\\]|\\[\t !-~])*)"')
_QUOTED_PAIR_RE = re.compile(r"\\(.)")
#: Header values we write must not contain control characters (CR/LF/NUL would split the response).
_BAD_VALUE_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

WEBSOCKET_VERSION = b"13"

#: Headers that may appear only once in a handshake (RFC 6455 section 11.3, RFC 9112 for Host).
_SINGLE_HEADERS = {
    b"host": "Host",
    b"sec-websocket-key": "Sec-WebSocket-Key",
    b"sec-websocket-version": "Sec-WebSocket-Version",
}


@dataclass(frozen=True, slots=True)
class ExtensionOffer:
    """One element of ``Sec-WebSocket-Extensions``: a lower-cased name and its parameters."""

    name: str
    #: ``(name, value)`` pairs in order; names lower-cased; ``None`` for a bare parameter;
    #: quoted values are unquoted.
    params: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class DeflateOffer:
    """A valid permessage-deflate offer (RFC 7692 section 7.1)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    #: The largest LZ77 window (8-15) the client lets the server compress with.
    server_max_window_bits: int | None = None
    #: The ``client_max_window_bits`` value the client gave (``None`` if bare or absent).
    #: We never answer with it: we inflate with the full window, which reads any smaller one.
    client_max_window_bits: int | None = None


@dataclass(frozen=True, slots=True)
class Handshake:
    """A valid opening handshake: what the connection needs to accept it."""

    #: The ``Sec-WebSocket-Key`` as received (24 base64 characters).
    key: bytes
    #: The offered subprotocols in the client's order (``scope["subprotocols"]``).
    subprotocols: tuple[str, ...] = ()
    #: Every extension offer, in the client's order of preference.
    extensions: tuple[ExtensionOffer, ...] = ()
    #: The valid permessage-deflate offers among them; invalid ones are declined (RFC 7692 5.1).
    deflate_offers: tuple[DeflateOffer, ...] = ()


@dataclass(frozen=True, slots=True)
class HandshakeRejection:
    """The response that refuses an invalid handshake; the connection closes after it."""

    status: int
    #: The reason phrase of the status line.
    reason: bytes
    #: Headers this refusal needs beyond the framing ones (``Sec-WebSocket-Version`` for 426).
    headers: tuple[tuple[bytes, bytes], ...]
    #: A short plain-text explanation; it never echoes request data.
    body: bytes

    def to_bytes(self, defaults: DefaultHeaders | None = None) -> bytes:
        """The whole response: status line, headers (``defaults`` added), plain-text body."""
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(self.body)),
            (b"connection", b"close"),
            *self.headers,
        ]
        return render_response(self.status, headers, defaults) + self.body


def _reject(status: int, text: str, *headers: tuple[bytes, bytes]) -> HandshakeRejection:
    return HandshakeRejection(status, reason_phrase(status), headers, text.encode("ascii") + b"\n")


class _Malformed(ValueError):
    """A list header that does not follow its grammar."""


def is_websocket_upgrade(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request asks for a WebSocket: ``Upgrade: websocket`` and ``Connection: upgrade``.

    Both are token lists compared case-insensitively; ``headers`` has lower-cased names
    (as h11 gives them).
    """
    upgrade = connection = False
    for name, value in headers:
        if name == b"upgrade":
            upgrade = upgrade or _has_token(value, b"websocket")
        elif name == b"connection":
            connection = connection or _has_token(value, b"upgrade")
    return upgrade and connection


def _has_token(value: bytes, token: bytes) -> bool:
    return any(item.strip(b" \t").lower() == token for item in value.split(b","))


def validate_handshake(
    method: bytes, http_version: bytes, headers: Iterable[tuple[bytes, bytes]]
) -> Handshake | HandshakeRejection:
    """Check a client's opening handshake (RFC 6455 section 4.2.1).

    Args:
        method: The request method, e.g. ``b"GET"``.
        http_version: ``b"1.1"`` or ``b"1.0"``, as h11 gives it.
        headers: The request headers with lower-cased names, order and duplicates kept.

    Returns:
        A :class:`Handshake` to accept, or the :class:`HandshakeRejection` to send:
        400 for a malformed handshake, 426 (with ``Sec-WebSocket-Version: 13``) for a
        version we do not speak.
    """
    if http_version != b"1.1":
        # RFC 6455 needs HTTP/1.1; an HTTP/1.0 client cannot have meant a WebSocket.
        return _reject(400, "WebSocket handshakes need HTTP/1.1")
    if method != b"GET":
        return _reject(400, "WebSocket handshakes use the GET method")
    headers = list(headers)
    fields = _HandshakeFields.collect(headers)
    if not is_websocket_upgrade(headers):
        return _reject(
            400, "a WebSocket handshake needs 'Upgrade: websocket' and 'Connection: Upgrade'"
        )
    if fields.has_body:
        # The bytes after the head must be frames; a body there would be read as frames.
        return _reject(400, "a WebSocket handshake has no body")
    problem = fields.check_single()
    if problem is not None:
        return problem
    keys = fields.single[b"sec-websocket-key"]
    if not keys or not _valid_key(keys[0]):
        return _reject(400, "Sec-WebSocket-Key must be the base64 encoding of 16 bytes")
    return _negotiate(keys[0].strip(b" \t"), fields)


class _HandshakeFields:
    """The header fields of a handshake that matter, gathered in one pass."""

    __slots__ = ("extensions", "has_body", "protocols", "single")

    def __init__(self) -> None:
        self.single: dict[bytes, list[bytes]] = {name: [] for name in _SINGLE_HEADERS}
        self.protocols: list[bytes] = []
        self.extensions: list[bytes] = []
        self.has_body = False

    @classmethod
    def collect(cls, headers: list[tuple[bytes, bytes]]) -> _HandshakeFields:
        fields = cls()
        single = fields.single
        for name, value in headers:
            if name in single:
                single[name].append(value)
            elif name == b"sec-websocket-protocol":
                fields.protocols.append(value)
            elif name == b"sec-websocket-extensions":
                fields.extensions.append(value)
            elif name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
                fields.has_body = True
        return fields

    def check_single(self) -> HandshakeRejection | None:
        """The fields that must appear once (Host, the version) are right, or the rejection."""
        single = self.single
        for name, display in _SINGLE_HEADERS.items():
            if len(single[name]) > 1:
                return _reject(400, f"repeated {display} header")
        if len(single[b"host"]) != 1:
            return _reject(400, "missing Host header")
        versions = single[b"sec-websocket-version"]
        if not versions or versions[0].strip(b" \t") != WEBSOCKET_VERSION:
            # Checked before the key, so that a client of another version learns which we speak.
            return _reject(
                426,
                "this server speaks WebSocket version 13",
                (b"sec-websocket-version", WEBSOCKET_VERSION),
            )
        return None


def _negotiate(key: bytes, fields: _HandshakeFields) -> Handshake | HandshakeRejection:
    """The subprotocols and extensions the client offers, or why they cannot be read."""
    try:
        subprotocols = _parse_protocols(fields.protocols)
    except _Malformed:
        return _reject(400, "Sec-WebSocket-Protocol must be a comma-separated list of tokens")
    try:
        offers = tuple(offer for value in fields.extensions for offer in _parse_extensions(value))
    except _Malformed:
        return _reject(400, "malformed Sec-WebSocket-Extensions header")
    deflate = tuple(
        parsed
        for offer in offers
        if offer.name == "permessage-deflate" and (parsed := _deflate_offer(offer)) is not None
    )
    return Handshake(key, subprotocols, offers, deflate)


def _valid_key(value: bytes) -> bool:
    value = value.strip(b" \t")
    if len(value) != 24:
        return False
    try:
        return len(base64.b64decode(value, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def _parse_protocols(values: list[bytes]) -> tuple[str, ...]:
    """Tokens from every ``Sec-WebSocket-Protocol`` line; empty list elements are skipped."""
    tokens: list[str] = []
    for value in values:
        for item in value.split(b","):
            item = item.strip(b" \t")
            if not item:
                continue  # RFC 9110 section 5.6.1: recipients ignore empty list elements
            if not _BTOKEN_RE.fullmatch(item):
                raise _Malformed(item)
            tokens.append(item.decode("ascii"))
    return tuple(tokens)


def _parse_extensions(value: bytes) -> list[ExtensionOffer]:
    """Parse ``1#( token *( ";" token [ "=" ( token / quoted-string ) ] ) )`` (RFC 6455 9.1)."""
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        raise _Malformed(value) from None
    offers: list[ExtensionOffer] = []
    pos, end = 0, len(text)
    while True:
        pos = _skip_ows(text, pos)
        if pos == end:
            return offers
        if text[pos] == ",":
            pos += 1  # an empty list element
            continue
        name, pos = _token(text, pos)
        params: list[tuple[str, str | None]] = []
        while True:
            pos = _skip_ows(text, pos)
            if pos == end or text[pos] != ";":
                break
            pos = _skip_ows(text, pos + 1)
            param, pos = _token(text, pos)
            pos = _skip_ows(text, pos)
            param_value: str | None = None
            if pos < end and text[pos] == "=":
                pos = _skip_ows(text, pos + 1)
                param_value, pos = _param_value(text, pos)
            params.append((param.lower(), param_value))
        offers.append(ExtensionOffer(name.lower(), tuple(params)))
        if pos < end:
            if text[pos] != ",":
                raise _Malformed(value)
            pos += 1


def _skip_ows(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _token(text: str, pos: int) -> tuple[str, int]:
    match = _TOKEN_RE.match(text, pos)
    if match is None:
        raise _Malformed(text)
    return match.group(), match.end()


def _param_value(text: str, pos: int) -> tuple[str, int]:
    match = _QUOTED_RE.match(text, pos)
    if match is None:
        return _token(text, pos)
    unquoted = _QUOTED_PAIR_RE.sub(r"\1", match.group(1))
    if not _TOKEN_RE.fullmatch(unquoted):
        # RFC 6455 9.1: a quoted value must still be a token once unquoted.
        raise _Malformed(text)
    return unquoted, match.end()


def _deflate_offer(offer: ExtensionOffer) -> DeflateOffer | None:
    """The offer's parameters if they are valid, else ``None``: the offer is declined."""
    seen: set[str] = set()
    flags = {"server_no_context_takeover": False, "client_no_context_takeover": False}
    server_bits: int | None = None
    client_bits: int | None = None
    for name, value in offer.params:
        if name in seen:
            return None
        seen.add(name)
        if name in flags:
            if value is not None:
                return None
            flags[name] = True
        elif name == "server_max_window_bits":
            server_bits = _window_bits(value)
            if server_bits is None:
                return None
        elif name == "client_max_window_bits":
            if value is not None:
                client_bits = _window_bits(value)
                if client_bits is None:
                    return None
        else:
            return None
    return DeflateOffer(
        server_no_context_takeover=flags["server_no_context_takeover"],
        client_no_context_takeover=flags["client_no_context_takeover"],
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
    )


def _window_bits(value: str | None) -> int | None:
    # RFC 7692 7.1.2: a decimal 8-15 without leading zeros.
    if value is None or not value.isdigit() or value.startswith("0") or not 8 <= int(value) <= 15:
        return None
    return int(value)


# --- writing responses ----------------------------------------------------------------------


def check_header(name: bytes, value: bytes) -> None:
    """Refuse a header we would write if it could break the response (response splitting).

    Raises:
        ASGIProtocolError: the name is not a token or the value has control characters.
    """
    if not _BTOKEN_RE.fullmatch(name):
        raise ASGIProtocolError(f"invalid header name {name!r}")
    if _BAD_VALUE_RE.search(value):
        raise ASGIProtocolError(f"invalid value for header {name!r}: control characters")


def render_response(
    status: int, headers: Iterable[tuple[bytes, bytes]], defaults: DefaultHeaders | None = None
) -> bytes:
    """An HTTP/1.1 status line and header block, ``defaults`` added for names not present.

    Raises:
        ASGIProtocolError: a header name or value is invalid (see :func:`check_header`).
    """
    out = list(headers)
    for name, value in out:
        check_header(name, value)
    if defaults is not None:
        defaults.complete(out, {name.lower() for name, _ in out})
    lines = b"".join([b"%s: %s\r\n" % item for item in out])
    return b"HTTP/1.1 %d %s\r\n%s\r\n" % (status, reason_phrase(status), lines)


#: 101 headers that are ours to write: an app's copies are dropped.
_OWN_101_HEADERS: Final = frozenset(
    {b"upgrade", b"connection", b"sec-websocket-accept", b"sec-websocket-extensions"}
)


def accept_response(
    handshake: Handshake,
    subprotocol: str | None,
    headers: Iterable[tuple[bytes, bytes]],
    extension: bytes | None,
    defaults: DefaultHeaders | None = None,
) -> bytes:
    """The ``101 Switching Protocols`` answer to ``handshake``.

    Args:
        handshake: The valid handshake being accepted.
        subprotocol: The app's choice among the offered subprotocols, or ``None``.
        headers: The app's extra headers (``websocket.accept`` ``headers``).
        extension: Our ``Sec-WebSocket-Extensions`` value, if we accepted one.
        defaults: ``Date``, ``Server`` and configured headers.

    Raises:
        ASGIProtocolError: the client did not offer ``subprotocol``, or ``headers``
            name ``sec-websocket-protocol`` or hold an invalid header.
    """
    out = [
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Accept", generate_accept_token(handshake.key)),
        *accept_fields(handshake, subprotocol, headers, extension),
    ]
    return render_response(101, out, defaults)


def accept_fields(
    handshake: Handshake,
    subprotocol: str | None,
    headers: Iterable[tuple[bytes, bytes]],
    extension: bytes | None,
) -> list[tuple[bytes, bytes]]:
    """The accepting response's fields beyond the HTTP/1.1 upgrade ones (the whole
    answer of an RFC 8441 ``200`` on HTTP/2): subprotocol, extension, the app's headers.

    Raises:
        ASGIProtocolError: as :func:`accept_response`.
    """
    if subprotocol is not None and subprotocol not in handshake.subprotocols:
        raise ASGIProtocolError(
            f"websocket.accept: subprotocol {subprotocol!r} was not offered "
            f"by the client (offered: {list(handshake.subprotocols)})"
        )
    out: list[tuple[bytes, bytes]] = []
    if subprotocol is not None:
        out.append((b"Sec-WebSocket-Protocol", subprotocol.encode("ascii")))
    if extension is not None:
        out.append((b"Sec-WebSocket-Extensions", extension))
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"sec-websocket-protocol":
            raise ASGIProtocolError(
                "websocket.accept: give the subprotocol in 'subprotocol', not as a header"
            )
        if lowered not in _OWN_101_HEADERS:
            check_header(name, value)
            out.append((name, value))
    return out


#: Denial-response headers that are ours: framing and connection management.
_OWN_DENIAL_HEADERS: Final = frozenset({b"connection", b"transfer-encoding"})
_NO_BODY_STATUSES: Final = frozenset({204, 304})


class DenialResponse:
    """The app's HTTP response instead of the 101 (the WebSocket denial-response extension).

    Framed by the app's Content-Length when it gives one, else by closing the
    connection; ``Connection: close`` either way. The head is held back and goes out
    with the first body chunk.

    Raises:
        ASGIProtocolError: a status outside 200-599, an invalid or repeated
            Content-Length, or an invalid header.
    """

    __slots__ = ("_drop_body", "_head", "_remaining")

    def __init__(
        self,
        status: int,
        headers: Iterable[tuple[bytes, bytes]],
        defaults: DefaultHeaders | None = None,
    ) -> None:
        if not 200 <= status <= 599:
            raise ASGIProtocolError(
                f"websocket.http.response.start: status {status} is not a final status (200-599)"
            )
        #: 204 and 304 carry no body, whatever the app sends.
        self._drop_body = status in _NO_BODY_STATUSES
        out: list[tuple[bytes, bytes]] = []
        length: int | None = None
        for name, value in headers:
            lowered = name.lower()
            if lowered in _OWN_DENIAL_HEADERS:
                continue
            if lowered == b"content-length":
                if length is not None or not value.isdigit():
                    raise ASGIProtocolError(
                        "websocket.http.response.start: invalid or repeated content-length header"
                    )
                length = int(value)
                if self._drop_body:
                    continue
            out.append((name, value))
        out.append((b"connection", b"close"))
        self._head = render_response(status, out, defaults)
        self._remaining = length

    def body(self, body: bytes, more_body: bool) -> bytes:
        """The bytes to write for one ``websocket.http.response.body``.

        Raises:
            ASGIProtocolError: more or fewer bytes than the declared Content-Length.
        """
        if self._drop_body:
            body = b""
        elif self._remaining is not None:
            if len(body) > self._remaining:
                raise ASGIProtocolError(
                    "websocket.http.response.body: more body than the content-length announced"
                )
            if not more_body and len(body) < self._remaining:
                raise ASGIProtocolError(
                    "websocket.http.response.body: the body ended before the length its "
                    "content-length header announced"
                )
            self._remaining -= len(body)
        if self._head:
            body = self._head + body
            self._head = b""
        return body
