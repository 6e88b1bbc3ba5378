"""Choosing HTTP/2 on a cleartext port: the prior-knowledge preface, and ``Upgrade: h2c``.

One port serves both HTTP/1.1 and HTTP/2: the I/O layer looks at the first bytes
with :func:`detect_preface` before it picks a protocol. An HTTP/1.1 request asking
to upgrade is checked by :func:`check_h2c_upgrade` (RFC 7540 section 3.2; RFC 9113
deprecates the mechanism, but clients such as curl still use it): we upgrade only a
request with exactly one valid ``HTTP2-Settings`` that ``Connection`` names, and
that has no body (a body would have to be read whole before the 101, which we do
not do: such a request is served over HTTP/1.1, as RFC 7540 allows).
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
import struct
from dataclasses import dataclass
from typing import Final

from ._http2_frames import PREFACE


class Preface(enum.Enum):
    #: The bytes so far match the preface: read more before deciding.
    NEED_MORE = enum.auto()
    #: The connection starts with the HTTP/2 preface.
    HTTP2 = enum.auto()
    #: Anything else: HTTP/1.x (or garbage, for the HTTP/1.1 parser to refuse).
    NOT_HTTP2 = enum.auto()


def detect_preface(data: bytes) -> Preface:
    """Which protocol the first bytes of a cleartext connection speak."""
    have = min(len(data), len(PREFACE))
    if data[:have] != PREFACE[:have]:
        return Preface.NOT_HTTP2
    return Preface.HTTP2 if have == len(PREFACE) else Preface.NEED_MORE


#: The 101 that switches an HTTP/1.1 connection to HTTP/2 (RFC 7540 section 3.2).
SWITCHING_PROTOCOLS: Final = (
    b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"
)

#: token68 in the base64url alphabet, padding optional (RFC 7540 section 3.2.1).
_BASE64URL = re.compile(rb"[A-Za-z0-9\-_]*={0,2}")


@dataclass(frozen=True, slots=True)
class H2cUpgrade:
    """Upgrade: send :data:`SWITCHING_PROTOCOLS`, then serve the request on stream 1."""

    #: The ``HTTP2-Settings`` value, padded, for ``H2ServerConnection(upgrade_settings=)``.
    settings: bytes


@dataclass(frozen=True, slots=True)
class H2cRefused:
    """Do not upgrade: serve the request over HTTP/1.1 as if no upgrade was asked."""

    reason: str


def check_h2c_upgrade(
    headers: list[tuple[bytes, bytes]], *, has_body: bool, tls: bool = False
) -> H2cUpgrade | H2cRefused | None:
    """Whether an HTTP/1.1 request's ``Upgrade: h2c`` may be honoured.

    ``headers`` have lower-case names. None when the request does not ask for h2c.
    """
    upgrade_tokens = _tokens(headers, b"upgrade")
    if b"h2c" not in upgrade_tokens:
        return None
    if tls:
        return H2cRefused("h2c is for cleartext connections; TLS negotiates h2 by ALPN")
    if has_body:
        return H2cRefused("a request with a body is not upgraded")
    values = [value for name, value in headers if name == b"http2-settings"]
    if len(values) != 1:
        return H2cRefused("exactly one HTTP2-Settings field is required")
    if not {b"upgrade", b"http2-settings"} <= _tokens(headers, b"connection"):
        return H2cRefused("Connection must name Upgrade and HTTP2-Settings")
    settings = _decode_settings(values[0].strip())
    if settings is None:
        return H2cRefused("HTTP2-Settings is not a base64url SETTINGS payload")
    return H2cUpgrade(settings)


def _tokens(headers: list[tuple[bytes, bytes]], wanted: bytes) -> set[bytes]:
    return {
        token.strip().lower()
        for name, value in headers
        if name == wanted
        for token in value.split(b",")
    }


def _decode_settings(value: bytes) -> bytes | None:
    if not _BASE64URL.fullmatch(value):
        return None
    padded = value.rstrip(b"=") + b"=" * (-len(value.rstrip(b"=")) % 4)
    try:
        payload = base64.urlsafe_b64decode(padded)
    except (binascii.Error, ValueError):
        return None
    if len(payload) % 6:
        return None  # RFC 9113 section 6.5: six octets per setting
    for offset in range(0, len(payload), 6):
        code, setting = struct.unpack_from(">HL", payload, offset)
        low, high = _SETTING_RANGES.get(code, (0, 2**32 - 1))
        if not low <= setting <= high:
            return None
    return padded


#: RFC 9113 section 6.5.2 and RFC 8441 section 3: the values a client may send.
_SETTING_RANGES = {
    0x2: (0, 1),  # ENABLE_PUSH
    0x4: (0, 2**31 - 1),  # INITIAL_WINDOW_SIZE
    0x5: (16384, 16777215),  # MAX_FRAME_SIZE
    0x8: (0, 1),  # ENABLE_CONNECT_PROTOCOL
}
