"""An HTTP/2 request head: from the fields h2 decoded to what the ASGI cycle reads.

RFC 9113's field rules (upper-case names, CR, LF and NUL in values,
connection-specific fields, ``te`` other than ``trailers``, unknown, repeated or
misplaced pseudo-headers, a missing ``:method``/``:scheme``/``:path``, an
``:authority`` that disagrees with ``host``) are :mod:`._http2_fields`'s, in the
one pass that sorts the fields: breaking one resets the stream with
PROTOCOL_ERROR. What a server must add is here: the target forms we serve,
``:authority`` syntax, ordinary CONNECT, RFC 8441's extended CONNECT, the
header-list size and count we advertise, and RFC 9113 section 8.2.3's joined
``cookie``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from weakref import WeakValueDictionary

from h2.errors import ErrorCodes

from ._bounded_memo import remember
from ._http2_fields import RequestFields, check_trailer_fields, split_request_fields
from ._target import InvalidTarget, split_target

#: RFC 8441 section 4: an extended CONNECT carries the pseudo-headers of any request.
_EXTENDED_CONNECT_NEEDS = (b":scheme", b":path", b":authority")
#: RFC 9110 section 5.6.2 token: what a method may be made of.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: RFC 9110 section 5.1: a field name is a token (so no ":", no space, no control).
FIELD_NAME = _TOKEN
#: uri-host [":" port], no userinfo (RFC 9113 section 8.3.1 forbids it in :authority).
_AUTHORITY = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]*)?")


@dataclass(frozen=True, slots=True)
class H2RequestHead:
    """A request on one stream, with the field names of the HTTP/1.1 request head."""

    method: str
    raw_target: bytes
    raw_path: bytes
    query_string: bytes
    #: Lower-cased names, order kept; ``host`` from ``:authority`` first; ``cookie``
    #: crumbs joined into one field where the first one stood. Shared by the requests
    #: of a connection that repeat a header block (:class:`RequestHeadMemo`): read it,
    #: or copy it before it is handed to an app.
    headers: list[tuple[bytes, bytes]]
    scheme: str
    authority: bytes | None
    content_length: int | None
    expects_continue: bool
    accepts_trailers: bool
    #: RFC 8441 extended CONNECT with ``:protocol websocket``.
    websocket: bool
    http_version: str = "2"
    chunked: bool = False
    upgrade: bool = False

    def printable_target(self) -> str:
        return self.raw_target.decode("ascii", "backslashreplace")[:200]


@dataclass(frozen=True, slots=True)
class Rejection:
    """A request refused before the app: a response ``status``, or a reset with ``code``."""

    status: int | None
    code: ErrorCodes | None
    reason: str


@dataclass(frozen=True, slots=True)
class RequestRules:
    scheme: str
    max_header_list_size: int
    max_header_count: int
    connect_protocol: bool


def parse_request_head(
    fields: list[tuple[bytes, bytes]], rules: RequestRules
) -> H2RequestHead | Rejection:
    """Check a decoded request header list; the head, or how to refuse it."""
    sorted_fields = split_request_fields(fields)
    if isinstance(sorted_fields, str):
        return Rejection(None, ErrorCodes.PROTOCOL_ERROR, sorted_fields)
    pseudo, regular = sorted_fields.pseudo, sorted_fields.regular
    if sorted_fields.size > rules.max_header_list_size:
        return Rejection(431, None, "header list over SETTINGS_MAX_HEADER_LIST_SIZE")
    if len(regular) > rules.max_header_count:
        return Rejection(431, None, "too many header fields")
    method_bytes = pseudo[b":method"]
    if not _TOKEN.fullmatch(method_bytes):
        return Rejection(None, ErrorCodes.PROTOCOL_ERROR, "invalid :method")
    method = method_bytes.decode("ascii")
    refused = check_connect(method, pseudo, connect_protocol=rules.connect_protocol)
    if refused is not None:
        return refused
    if pseudo.get(b":scheme", b"").lower() not in (b"http", b"https"):
        return Rejection(400, None, ":scheme is not http or https")
    authority = pseudo.get(b":authority")
    host = authority if authority is not None else sorted_fields.host
    if host is not None and not _AUTHORITY.fullmatch(host):
        return Rejection(400, None, "invalid :authority or host")
    target = pseudo.get(b":path", b"")
    try:
        raw_path, query = _split_path(method, target)
    except InvalidTarget as exc:
        return Rejection(400, None, str(exc))
    return _head(method, target, raw_path, query, sorted_fields, host, rules)


#: Heads remembered for all the connections of a server (its clients repeat a few
#: header lists each, and many clients send the same ones).
HEAD_MEMO_ENTRIES = 32
#: A header list is remembered only up to this many bytes of names and values.
HEAD_MEMO_MAX_BYTES = 4096


class RequestHeadMemo:
    """:func:`parse_request_head` under one set of rules, remembering repeated header lists.

    The parse is a pure function of the fields and the rules, and clients send the
    same list (byte for byte) for most of their requests. Equal fields give the same
    head or the same refusal: what is remembered is returned as it is (both are
    frozen; a head's ``headers`` list is only read, see :class:`H2RequestHead`).

    One memo serves every live connection with equal rules
    (:func:`shared_request_head_memo`), so a connection holds no heads of its own and
    an idle one costs nothing here. It is bounded in entries and in bytes per entry.
    """

    __slots__ = ("__weakref__", "_heads", "_rules")

    def __init__(self, rules: RequestRules) -> None:
        self._rules = rules
        self._heads: dict[tuple[tuple[bytes, bytes], ...], H2RequestHead | Rejection] = {}

    def parse(self, headers: Sequence[tuple[bytes, bytes]]) -> H2RequestHead | Rejection:
        # Fields that compare equal hold equal bytes (h2's HeaderTuple is a tuple).
        key = tuple(headers)
        heads = self._heads
        head = heads.get(key)
        if head is not None:
            return head
        fields = [(bytes(name), bytes(value)) for name, value in key]
        head = parse_request_head(fields, self._rules)
        if sum(len(name) + len(value) for name, value in fields) <= HEAD_MEMO_MAX_BYTES:
            remember(heads, key, head, HEAD_MEMO_ENTRIES)
        return head


#: The memo of each set of rules some live connection uses; a memo goes with the last
#: connection that holds it (a server's connections share rules, see RequestRules).
_SHARED_HEAD_MEMOS: WeakValueDictionary[RequestRules, RequestHeadMemo] = WeakValueDictionary()


def shared_request_head_memo(rules: RequestRules) -> RequestHeadMemo:
    """The :class:`RequestHeadMemo` of every live connection with rules equal to ``rules``."""
    memo = _SHARED_HEAD_MEMOS.get(rules)
    if memo is None:
        memo = _SHARED_HEAD_MEMOS[rules] = RequestHeadMemo(rules)
    return memo


def check_connect(
    method: str, pseudo: dict[bytes, bytes], *, connect_protocol: bool
) -> Rejection | None:
    """CONNECT and RFC 8441's extended CONNECT: how to refuse the request, or None to serve it.

    ``:protocol`` is a stream error unless we advertised SETTINGS_ENABLE_CONNECT_PROTOCOL
    and the method is CONNECT (RFC 8441 sections 3 and 4), and an extended CONNECT needs
    ``:scheme``, ``:path`` and ``:authority`` (section 4); :mod:`._http2_fields` refused
    a block without ``:scheme`` or ``:path`` already. Plain CONNECT (a tunnel) is not
    served: 501. Extended CONNECT for another protocol than ``websocket``: 501.
    """
    protocol = pseudo.get(b":protocol")
    if protocol is None:
        return Rejection(501, None, "CONNECT is not served") if method == "CONNECT" else None
    if not connect_protocol:
        return Rejection(None, ErrorCodes.PROTOCOL_ERROR, ":protocol without the setting")
    if method != "CONNECT":
        return Rejection(None, ErrorCodes.PROTOCOL_ERROR, ":protocol on a request not CONNECT")
    if not all(pseudo.get(name) for name in _EXTENDED_CONNECT_NEEDS):
        return Rejection(
            None, ErrorCodes.PROTOCOL_ERROR, "extended CONNECT without :scheme, :path or :authority"
        )
    if protocol != b"websocket":
        return Rejection(501, None, "extended CONNECT for a protocol we do not serve")
    return None


def _split_path(method: str, target: bytes) -> tuple[bytes, bytes]:
    # RFC 9113 section 8.3.1: origin-form, or "*" for OPTIONS; never absolute-form.
    if target[:1] != b"/" and target != b"*":
        raise InvalidTarget(":path is not origin-form or '*'")
    return split_target(method, target)


def _head(
    method: str,
    target: bytes,
    raw_path: bytes,
    query: bytes,
    fields: RequestFields,
    host: bytes | None,
    rules: RequestRules,
) -> H2RequestHead:
    regular = fields.regular
    headers = join_cookies(regular) if fields.cookies > 1 else regular
    if host is not None and fields.host is None:
        headers.insert(0, (b"host", host))
    length = fields.content_length  # h2 checked it: digits, one value
    return H2RequestHead(
        method=method,
        raw_target=target,
        raw_path=raw_path,
        query_string=query,
        headers=headers,
        scheme=rules.scheme,
        authority=host,
        content_length=int(length) if length is not None else None,
        expects_continue=(fields.expect or b"").lower() == b"100-continue",
        accepts_trailers=fields.te == b"trailers",
        websocket=b":protocol" in fields.pseudo,
    )


def join_cookies(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """RFC 9113 section 8.2.3: cookie crumbs joined with "; " where the first stood."""
    crumbs = [value for name, value in headers if name == b"cookie"]
    if len(crumbs) < 2:
        return list(headers)
    joined: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name != b"cookie":
            joined.append((name, value))
        elif crumbs:
            joined.append((b"cookie", b"; ".join(crumbs)))
            crumbs = []
    return joined


def trailer_fields(fields: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]] | str:
    """Request trailers as the app may see them; or why they are malformed."""
    why = check_trailer_fields(fields)
    return fields if why is None else why
