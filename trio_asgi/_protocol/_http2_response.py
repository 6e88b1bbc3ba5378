"""Response fields as HTTP/2 carries them: checked and normalised in one pass.

h2's own outbound validation and normalisation are off (``_http2._new_h2``): they
walked every field again through a chain of generators, a fifth of the cost of
sending a head. :func:`checked_response_fields` does what they did.
"""

from __future__ import annotations

from collections.abc import Hashable
from weakref import WeakValueDictionary

from hpack import NeverIndexedHeaderTuple

from ._bounded_memo import remember
from ._http2_request import FIELD_NAME

#: RFC 9113 section 8.2.2: connection-specific fields, and ``te`` (a request field).
_NOT_IN_HTTP2 = frozenset(
    {b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"te"}
)
#: Kept out of the HPACK table (as h2 and nghttp2 do): a guessable secret in a shared
#: compression context leaks through the compressed size.
_NEVER_INDEXED = frozenset({b"authorization", b"proxy-authorization"})


class H2ResponseError(ValueError):
    """A response the app asked for that HTTP/2 cannot carry (the ASGI layer answers 500)."""


def checked_response_fields(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Response fields checked and normalised in one pass, for h2 to encode as they are.

    What h2's outbound checks did: names must be tokens (no pseudo-header, nothing
    empty) and are lowercased, values lose surrounding whitespace and must hold no CR,
    LF or NUL (the app's error); the connection-specific fields that apps written for
    HTTP/1.1 send (``connection``, ``transfer-encoding``...) and ``te`` (a request
    field) are dropped; credentials are never added to the HPACK table.
    """
    fields: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if not FIELD_NAME.fullmatch(name):
            raise H2ResponseError(f"invalid response header name {name[:40]!r}")
        if b"\r" in value or b"\n" in value or b"\0" in value:
            raise H2ResponseError("CR, LF or NUL in a response header value")
        name = name.lower()
        if name in _NOT_IN_HTTP2:
            continue
        value = value.strip()
        if name in _NEVER_INDEXED or (name == b"cookie" and len(value) < 20):
            fields.append(NeverIndexedHeaderTuple(name, value))
        else:
            fields.append((name, value))
    return fields


def checked_response_head(
    status: int, headers: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """A final response head's fields, ``:status`` first, checked as
    :func:`checked_response_fields` does.

    Raises:
        H2ResponseError: the status is not final, or a field is invalid.
    """
    if not 200 <= status <= 999:
        raise H2ResponseError(f"{status} is not a final status")
    return [(b":status", str(status).encode()), *checked_response_fields(headers)]


#: Heads remembered for all the connections of a server (an API answers with a few
#: distinct heads).
RESPONSE_MEMO_ENTRIES = 32
#: A head is remembered only up to this many bytes of names and values.
RESPONSE_MEMO_MAX_BYTES = 2048


class ResponseHeadMemo:
    """:func:`checked_response_head`, remembering repeated heads.

    The check is a pure function of the status and the fields, and most responses
    repeat both exactly (only ``date`` changes, once a second). Only plain
    ``(bytes, bytes)`` tuples and an ``int`` status are remembered: values that compare
    equal to them (``memoryview``, ``bool``) could check differently. The list
    returned may be shared by several responses: it is only read (h2 copies it).

    One memo serves a server's live connections (:func:`shared_response_head_memo`),
    so an idle connection holds no heads of its own.
    """

    __slots__ = ("__weakref__", "_heads")

    def __init__(self) -> None:
        self._heads: dict[tuple[object, ...], list[tuple[bytes, bytes]]] = {}

    def checked(self, status: int, fields: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """:func:`checked_response_head` ``(status, fields)``, remembered.

        Raises:
            H2ResponseError: as :func:`checked_response_head` (nothing is remembered).
        """
        if type(status) is not int or not _plain(fields):
            return checked_response_head(status, fields)
        key = (status, *fields)
        heads = self._heads
        head = heads.get(key)
        if head is None:
            head = checked_response_head(status, fields)
            if sum(len(name) + len(value) for name, value in fields) <= RESPONSE_MEMO_MAX_BYTES:
                remember(heads, key, head, RESPONSE_MEMO_ENTRIES)
        return head


#: The memo shared by the live connections of one server (keyed by their request rules,
#: which a server's connections share); a memo goes with the last connection holding it.
_SHARED_RESPONSE_MEMOS: WeakValueDictionary[Hashable, ResponseHeadMemo] = WeakValueDictionary()


def shared_response_head_memo(server_key: Hashable) -> ResponseHeadMemo:
    """The :class:`ResponseHeadMemo` of every live connection with an equal ``server_key``."""
    memo = _SHARED_RESPONSE_MEMOS.get(server_key)
    if memo is None:
        memo = _SHARED_RESPONSE_MEMOS[server_key] = ResponseHeadMemo()
    return memo


def _plain(fields: list[tuple[bytes, bytes]]) -> bool:
    for field in fields:
        if type(field) is not tuple or len(field) != 2:
            return False
        name, value = field
        if type(name) is not bytes or type(value) is not bytes:
            return False
    return True
