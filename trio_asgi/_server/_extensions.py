"""The ASGI extensions one connection offers, worked out once when it opens.

``scope["extensions"]`` advertises only what works on the connection: the file
messages (``http.response.pathsend``, and ``http.response.zerocopysend`` where the
bytes need not pass through us, i.e. not on TLS), early hints, and on TLS the
``tls`` extension with what the handshake established. ``http.response.trailers``
is added per request, when the request says ``TE: trailers``.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from typing import Any, Final

import anyio.abc
from anyio.streams.tls import TLSAttribute

_PATHSEND: Final = "http.response.pathsend"
_ZEROCOPY: Final = "http.response.zerocopysend"
_EARLY_HINT: Final = "http.response.early_hint"
_TRAILERS: Final = "http.response.trailers"

#: ``tls_version`` values of the ASGI TLS extension (the protocol's wire numbers).
TLS_VERSIONS: Final[dict[str, int]] = {
    "TLSv1": 0x0301,
    "TLSv1.1": 0x0302,
    "TLSv1.2": 0x0303,
    "TLSv1.3": 0x0304,
}

#: RFC 4514's short names for the attribute types a certificate subject has.
_RDN_NAMES: Final[dict[str, str]] = {
    "commonName": "CN",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}

#: OpenSSL cipher name -> IANA cipher suite number, filled as names are met.
_CIPHER_IDS: dict[str, int | None] = {}
#: Certificate file -> (mtime, its first certificate as PEM).
_SERVER_CERTS: dict[str, tuple[float, str | None]] = {}


@dataclass(frozen=True, slots=True)
class Extensions:
    """What one connection's scopes advertise and its response order accepts."""

    #: ``scope["extensions"]`` without and with ``http.response.trailers``.
    plain: dict[str, dict[str, Any]] = field(default_factory=dict)
    with_trailers: dict[str, dict[str, Any]] = field(default_factory=lambda: {_TRAILERS: {}})
    #: The extension message types the response order table allows.
    messages: frozenset[str] = frozenset()


NO_EXTENSIONS: Final = Extensions()


def _extensions(plain: dict[str, dict[str, Any]]) -> Extensions:
    return Extensions(plain, {**plain, _TRAILERS: {}}, frozenset(plain) - {"tls"})


#: Every plain (not TLS) HTTP/1.1 connection's: one object, nothing made per connection.
PLAIN_HTTP11: Final = _extensions({_PATHSEND: {}, _ZEROCOPY: {}, _EARLY_HINT: {}})


def connection_extensions(stream: anyio.abc.ByteStream, server_certfile: str | None) -> Extensions:
    """The extensions of an HTTP/1.1 connection over ``stream``."""
    ssl_object = stream.extra(TLSAttribute.ssl_object, None)
    if ssl_object is None:
        return PLAIN_HTTP11
    tls = tls_extension(ssl_object, server_certfile)
    return _extensions({_PATHSEND: {}, _EARLY_HINT: {}, "tls": tls})


def tls_extension(ssl_object: ssl.SSLObject, server_certfile: str | None) -> dict[str, Any]:
    """The ``tls`` scope extension (ASGI TLS extension 0.2) for one TLS connection."""
    binary = ssl_object.getpeercert(binary_form=True)
    cipher = ssl_object.cipher()
    version = ssl_object.version()
    return {
        "server_cert": _server_cert(server_certfile),
        # Python's ssl gives the peer's own certificate only, not the chain it sent.
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(binary)] if binary else [],
        "client_cert_name": _rfc4514_name(ssl_object.getpeercert()) if binary else None,
        # A certificate that failed verification fails the handshake: never here.
        "client_cert_error": None,
        "tls_version": TLS_VERSIONS.get(version or ""),
        "cipher_suite": _cipher_id(ssl_object, cipher[0]) if cipher else None,
    }


def _rfc4514_name(cert: Any) -> str | None:
    subject = cert.get("subject") if cert else None
    if not subject:
        return None
    rdns = (
        "+".join(f"{_RDN_NAMES.get(key, key)}={_escape(value)}" for key, value in rdn)
        for rdn in subject
    )
    return ",".join(reversed(list(rdns)))


def _escape(value: str) -> str:
    out = "".join("\\" + c if c in ',+"\\<>;=' else c for c in value)
    if out.startswith(("#", " ")):
        out = "\\" + out
    if out.endswith(" "):
        out = out[:-1] + "\\ "
    return out


def _cipher_id(ssl_object: ssl.SSLObject, name: str) -> int | None:
    if name not in _CIPHER_IDS:
        ids = {c["name"]: c["id"] & 0xFFFF for c in ssl_object.context.get_ciphers()}
        _CIPHER_IDS[name] = ids.get(name)
    return _CIPHER_IDS[name]


def _server_cert(path: str | None) -> str | None:
    """The first certificate of the server's certificate file, as PEM (cached by mtime)."""
    if path is None:
        return None
    try:
        mtime = os.stat(path).st_mtime
        cached = _SERVER_CERTS.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        with open(path, encoding="ascii", errors="replace") as file:
            text = file.read()
    except OSError:
        return None
    end_marker = "-----END CERTIFICATE-----"
    start = text.find("-----BEGIN CERTIFICATE-----")
    end = text.find(end_marker, start)
    pem = text[start : end + len(end_marker)] + "\n" if start >= 0 and end >= 0 else None
    _SERVER_CERTS[path] = (mtime, pem)
    return pem
