"""A complete request head parsed by h11, without an ``h11.Connection`` around it.

h11 is our request-head parser: its request-line and header-field grammars and its
validation. We hand it only heads whose end we found ourselves and frame bodies
ourselves, so the connection state machine around its reader does nothing for us,
yet building one and stepping it cost as much as the parse (about 5 µs of 11 µs per
request, measured with ``timeit`` on a one-header GET).

So :func:`parse_request_head` calls h11's head reader directly. That reader is not
h11's public API: should a future h11 move it, :func:`parse_request_head_public`
(the same parse through ``h11.Connection``) takes over, slower but equal, and the
tests hold both to the same answers.
"""

from __future__ import annotations

from collections.abc import Callable

import h11


def parse_request_head_public(head: bytes) -> h11.Request:
    """Parse one complete request head (ending in CRLF CRLF) through ``h11.Connection``.

    Raises:
        h11.ProtocolError: the head is malformed; ``error_status_hint`` is the status.
    """
    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=len(head) + 1)
    parser.receive_data(head)
    event = parser.next_event()
    if not isinstance(event, h11.Request):
        raise h11.RemoteProtocolError("incomplete request head")
    return event


def _direct_parser() -> Callable[[bytes], h11.Request] | None:
    try:
        from h11._readers import maybe_read_from_IDLE_client
        from h11._receivebuffer import ReceiveBuffer
    except ImportError:  # pragma: no cover - an h11 that reorganised its modules
        return None

    def parse_request_head_direct(head: bytes) -> h11.Request:
        buffer = ReceiveBuffer()
        buffer += head
        event = maybe_read_from_IDLE_client(buffer)
        if event is None:
            raise h11.RemoteProtocolError("incomplete request head")
        return event

    return parse_request_head_direct


#: Parse one complete request head; raises ``h11.ProtocolError`` (with
#: ``error_status_hint``) if it is malformed.
parse_request_head: Callable[[bytes], h11.Request] = _direct_parser() or parse_request_head_public
