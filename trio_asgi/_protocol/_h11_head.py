"""h11's head reader as the reference for our own parser, and the one switch between them.

:func:`._head_parser.parse_head` is the parser the server runs. h11's head reader (its
request-line and field grammars and its validation) stays as the reference it is held
to: ``tests/protocol/test_head_parser_differential.py`` feeds both the same bytes and
requires the same answers, and ``TRIO_ASGI_HEAD_PARSER=h11`` makes a server parse with
h11 instead, for diagnosis (read once, at import).

h11's reader is reached directly, without an ``h11.Connection`` around it (whose state
machine does nothing for heads we frame ourselves). That reader is not h11's public
API: should a future h11 move it, :func:`parse_head_h11_public` (the same parse through
``h11.Connection``) takes over, and the tests hold both to the same answers.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import h11

from ._head_parser import HeadError, ParsedHead, parse_head

#: A head parser: one complete head in, or :class:`HeadError`.
HeadParser = Callable[[bytes], ParsedHead]


def _parsed(event: h11.Request) -> ParsedHead:
    headers = [(name.lower(), value) for name, value in event.headers.raw_items()]
    return ParsedHead(event.method, event.target, event.http_version, headers)


def parse_head_h11_public(head: bytes) -> ParsedHead:
    """Parse one complete request head (ending in CRLF CRLF) through ``h11.Connection``.

    Raises:
        HeadError: the head is malformed; the status is h11's ``error_status_hint``.
    """
    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=len(head) + 1)
    try:
        parser.receive_data(head)
        event = parser.next_event()
    except h11.ProtocolError as exc:
        raise HeadError(exc.error_status_hint, str(exc)) from None
    if not isinstance(event, h11.Request):
        raise HeadError(400, "incomplete request head")
    return _parsed(event)


def _direct_reader() -> HeadParser | None:
    try:
        from h11._readers import maybe_read_from_IDLE_client
        from h11._receivebuffer import ReceiveBuffer
    except ImportError:  # pragma: no cover - an h11 that reorganised its modules
        return None

    def parse_head_h11_direct(head: bytes) -> ParsedHead:
        buffer = ReceiveBuffer()
        buffer += head
        try:
            event = maybe_read_from_IDLE_client(buffer)
        except h11.ProtocolError as exc:
            raise HeadError(exc.error_status_hint, str(exc)) from None
        if event is None:
            raise HeadError(400, "incomplete request head")
        return _parsed(event)

    return parse_head_h11_direct


#: h11's reader, reached directly where this h11 allows it.
parse_head_h11: HeadParser = _direct_reader() or parse_head_h11_public

PARSERS: dict[str, HeadParser] = {"trio_asgi": parse_head, "h11": parse_head_h11}


def selected_parser(name: str | None = None) -> HeadParser:
    """The parser named by ``name``, else by ``TRIO_ASGI_HEAD_PARSER``, else our own.

    Raises:
        ValueError: an unknown name.
    """
    name = name or os.environ.get("TRIO_ASGI_HEAD_PARSER") or "trio_asgi"
    try:
        return PARSERS[name]
    except KeyError:
        raise ValueError(
            f"TRIO_ASGI_HEAD_PARSER={name!r}: expected one of {', '.join(PARSERS)}"
        ) from None
