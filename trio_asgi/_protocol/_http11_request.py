"""What an HTTP/1.1 request head means: its header fields, one handler each, and the framing rules.

The head parser (:mod:`._head_parser`, held equal to h11's) has checked the
grammar of the head; :func:`interpret_head` applies the rules h11 leaves out and
turns the head into a :class:`RequestHead`. Each header field the server acts on
has one handler in :data:`HEADER_HANDLERS`, which fills in the request being
built or names the status and reason for refusing it; the rules that need the
whole head (framing, HTTP/1.0) come after, in order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

from ._head_parser import ParsedHead
from ._target import InvalidTarget, split_target


@dataclass(slots=True)
class RequestHead:
    method: str
    http_version: str
    raw_target: bytes
    raw_path: bytes
    query_string: bytes
    #: Lower-cased names, order and duplicates kept.
    headers: list[tuple[bytes, bytes]]
    content_length: int | None
    chunked: bool
    expects_continue: bool
    #: The client sent ``TE: trailers``, so response trailers may be sent.
    accepts_trailers: bool
    #: An ``Upgrade`` header is present (maybe a WebSocket handshake).
    upgrade: bool = False
    #: The client lets the connection carry another request after this one.
    keep_alive: bool = True

    def printable_target(self) -> str:
        """The target for a log line: visible ASCII only (h11 allows nothing else), cut short."""
        return self.raw_target.decode("ascii", "backslashreplace")[:200]


@dataclass(slots=True)
class BadRequest:
    """Malformed input: answer ``status`` and close. ``detail`` is for the debug log only."""

    status: int
    detail: str


#: A header handler: updates the request, or returns why it must be refused.
HeaderHandler: TypeAlias = Callable[[RequestHead, bytes], "BadRequest | None"]

_SERVED_VERSIONS: Final = {b"1.1": "1.1", b"1.0": "1.0"}
_UNSERVED_METHODS: Final = {b"CONNECT": 501, b"PRI": 501}
#: uri-host [":" port] (RFC 9110 section 7.2, RFC 3986 section 3.2.2): an IP literal in
#: brackets or a reg-name (unreserved, pct-encoded, sub-delims); no userinfo, no path.
_HOST: Final = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?")


def _content_length(request: RequestHead, value: bytes) -> BadRequest | None:
    request.content_length = int(value)  # the head parser checked it is digits
    return None


def _transfer_encoding(request: RequestHead, value: bytes) -> BadRequest | None:
    request.chunked = True  # the head parser accepts only "chunked"
    return None


def _expect(request: RequestHead, value: bytes) -> BadRequest | None:
    request.expects_continue = value.lower() == b"100-continue"
    return None


def _te(request: RequestHead, value: bytes) -> BadRequest | None:
    request.accepts_trailers = b"trailers" in value.lower()
    return None


def _connection(request: RequestHead, value: bytes) -> BadRequest | None:
    request.keep_alive = request.keep_alive and b"close" not in value.lower()
    return None


def _upgrade(request: RequestHead, value: bytes) -> BadRequest | None:
    request.upgrade = True
    return None


def _host(request: RequestHead, value: bytes) -> BadRequest | None:
    if _HOST.fullmatch(value) is None:
        # RFC 9112 section 3.2: an invalid Host value MUST get a 400.
        return BadRequest(400, "invalid Host header")
    return None


#: The header fields the server acts on, by lower-cased name.
HEADER_HANDLERS: Final[dict[bytes, HeaderHandler]] = {
    b"content-length": _content_length,
    b"transfer-encoding": _transfer_encoding,
    b"expect": _expect,
    b"te": _te,
    b"connection": _connection,
    b"upgrade": _upgrade,
    b"host": _host,
}


def interpret_head(
    event: ParsedHead, head: bytes, max_target_length: int
) -> RequestHead | BadRequest:
    """The request ``event`` (parsed from the raw ``head``) stands for, or why it is refused."""
    version = _SERVED_VERSIONS.get(event.http_version)
    if version is None:
        return BadRequest(505, f"HTTP version {event.http_version!r} not supported")
    status = _UNSERVED_METHODS.get(event.method)
    if status is not None:
        return BadRequest(status, f"method {event.method!r} not served")
    method = event.method.decode("ascii")
    if len(event.target) > max_target_length:
        return BadRequest(414, "request target too long")
    try:
        raw_path, query = split_target(method, event.target)
    except InvalidTarget as exc:
        return BadRequest(400, str(exc))
    headers = event.headers
    request = RequestHead(
        method=method,
        http_version=version,
        raw_target=event.target,
        raw_path=raw_path,
        query_string=query,
        headers=headers,
        content_length=None,
        chunked=False,
        expects_continue=False,
        accepts_trailers=False,
        keep_alive=version == "1.1",
    )
    handlers = HEADER_HANDLERS
    for name, value in headers:
        handler = handlers.get(name)
        if handler is not None:
            problem = handler(request, value)
            if problem is not None:
                return problem
    return _check_framing(request, head)


def _check_framing(request: RequestHead, head: bytes) -> RequestHead | BadRequest:
    """The rules that need the whole head: body framing and what HTTP/1.0 may send."""
    chunked = request.chunked
    if chunked and request.http_version == "1.0":
        # RFC 9112 section 6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing.
        return BadRequest(400, "Transfer-Encoding in an HTTP/1.0 request")
    if request.content_length is not None:
        if chunked:
            # RFC 9112 section 6.1: both is a smuggling attempt, and the connection must close.
            return BadRequest(400, "both Content-Length and Transfer-Encoding")
        # h11 merges repeated equal lengths; a strict server takes exactly one.
        lowered = head.lower()
        if lowered.count(b"\r\ncontent-length:") != 1 or b"," in _content_length_value(lowered):
            return BadRequest(400, "repeated Content-Length")
    if request.expects_continue:
        # 100 Continue only makes sense for an HTTP/1.1 request with a body.
        request.expects_continue = request.http_version == "1.1" and bool(
            chunked or request.content_length
        )
    return request


def _content_length_value(lowered_head: bytes) -> bytes:
    start = lowered_head.index(b"\r\ncontent-length:") + len(b"\r\ncontent-length:")
    return lowered_head[start : lowered_head.index(b"\r\n", start)]
