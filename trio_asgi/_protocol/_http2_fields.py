"""The field rules of RFC 9113 sections 8.2 and 8.3 for a received header block, in one pass.

h2 can check them itself (``validate_inbound_headers``) through a chain of seven
generators, each walking the fields again: about a tenth of the server's CPU per
request. Its inbound validation is off (``_http2._new_h2``) and these functions
apply the same rules instead, in the one pass that also sorts the fields for
:mod:`._http2_request`. A block that breaks one is malformed (section 8.1.1): the
stream is reset with PROTOCOL_ERROR, as it was when h2 refused it.

The rules, each as h2 4.4 applies them (``tests/protocol/test_http2_fields.py``
compares the two on generated blocks):

* a name is not empty; it holds no byte in 0x00-0x20, 0x41-0x5a (upper case) or
  0x7f-0xff, and no ``:`` but a pseudo-header's first byte;
* a value holds no NUL, CR or LF and does not start or end with SP or HTAB;
* no connection-specific field (``connection``, ``proxy-connection``,
  ``keep-alive``, ``transfer-encoding``, ``upgrade``); ``te`` only as ``trailers``;
* requests: pseudo-headers are known, not repeated and before every regular field;
  ``:method`` is there; ``:scheme`` and ``:path`` are there, except in a plain
  CONNECT, which has neither; ``:protocol`` only with CONNECT; no ``:status``; an
  empty ``:path`` is refused; one ``host`` at most, and ``:authority`` or ``host``,
  equal when both are there;
* trailers: no pseudo-header at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Bytes a regular field name may hold (RFC 9113 section 8.2.1).
_NAME = re.compile(rb"[\x21-\x39\x3b-\x40\x5b-\x7e]+")
_REQUEST_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path", b":protocol"})
#: RFC 9113 section 8.2.2 (``te`` is checked on its own).
CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade"}
)
#: SP and HTAB: no value may start or end with one.
_EDGE_WHITESPACE = (0x20, 0x09)
#: RFC 9113 section 8.2: each field counts its name, its value and 32 octets.
FIELD_OVERHEAD = 32


@dataclass(slots=True)
class RequestFields:
    """A request's fields sorted in the one pass that checked them."""

    pseudo: dict[bytes, bytes] = field(default_factory=dict)
    #: Regular fields, order kept.
    regular: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: The header-list size as SETTINGS_MAX_HEADER_LIST_SIZE counts it.
    size: int = 0
    host: bytes | None = None
    content_length: bytes | None = None
    expect: bytes | None = None
    te: bytes | None = None
    cookies: int = 0


def _bad_value(value: bytes) -> bool:
    return bool(value) and (
        b"\r" in value
        or b"\n" in value
        or b"\0" in value
        or value[0] in _EDGE_WHITESPACE
        or value[-1] in _EDGE_WHITESPACE
    )


def _bad_regular(name: bytes, value: bytes) -> str | None:
    """Why a regular field is malformed wherever it stands (None: it is not)."""
    if not _NAME.fullmatch(name):
        return f"invalid field name {name[:40]!r}"
    if name in CONNECTION_SPECIFIC:
        return f"connection-specific field {name!r}"
    if name == b"te" and value.lower() != b"trailers":
        return "te other than trailers"
    return None


def split_request_fields(fields: list[tuple[bytes, bytes]]) -> RequestFields | str:
    """A request header block checked and sorted; or why it is malformed."""
    out = RequestFields()
    pseudo, regular = out.pseudo, out.regular
    size = 0
    for name, value in fields:
        size += len(name) + len(value) + FIELD_OVERHEAD
        if _bad_value(value):
            return f"CR, LF, NUL or surrounding whitespace in the value of {name[:40]!r}"
        if name[:1] == b":":
            if regular:
                return f"pseudo-header {name[:40]!r} after a regular field"
            if name not in _REQUEST_PSEUDO:
                return f"pseudo-header {name[:40]!r} not allowed in a request"
            if name in pseudo:
                return f"repeated pseudo-header {name!r}"
            pseudo[name] = value
            continue
        why = _bad_regular(name, value)
        if why is not None:
            return why
        if name == b"host":
            if out.host is not None:
                return "more than one host field"
            out.host = value
        elif name == b"content-length":
            out.content_length = out.content_length or value
        elif name == b"cookie":
            out.cookies += 1
        elif name == b"te":
            out.te = value
        elif name == b"expect" and out.expect is None:
            out.expect = value
        regular.append((name, value))
    out.size = size
    why = _bad_pseudo_set(pseudo, out.host)
    return out if why is None else why


def _bad_pseudo_set(pseudo: dict[bytes, bytes], host: bytes | None) -> str | None:
    """Why a request's set of pseudo-headers is malformed (None: it is not)."""
    method = pseudo.get(b":method")
    if method is None:
        return "no :method"
    connect = method == b"CONNECT"
    if connect and b":protocol" not in pseudo:
        if b":scheme" in pseudo or b":path" in pseudo:
            return "CONNECT with :scheme or :path"
    elif b":scheme" not in pseudo or b":path" not in pseudo:
        return "no :scheme or :path"
    if not connect and b":protocol" in pseudo:
        return ":protocol on a request not CONNECT"
    if pseudo.get(b":path", b"/") == b"":
        return "empty :path"
    authority = pseudo.get(b":authority")
    if authority is None and host is None:
        return "neither :authority nor host"
    if authority is not None and host is not None and authority != host:
        return ":authority and host disagree"
    return None


def check_trailer_fields(fields: list[tuple[bytes, bytes]]) -> str | None:
    """Why a trailer block is malformed (None: it is not)."""
    for name, value in fields:
        if _bad_value(value):
            return f"CR, LF, NUL or surrounding whitespace in the value of {name[:40]!r}"
        if name[:1] == b":":
            return f"pseudo-header {name[:40]!r} in trailers"
        why = _bad_regular(name, value)
        if why is not None:
            return why
    return None
