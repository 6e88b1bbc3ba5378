"""The order and shape of the messages an app sends on a WebSocket scope, as a table.

Before the handshake completes the app answers ``websocket.connect`` with
``websocket.accept``, ``websocket.close`` (HTTP 403) or a denial response
(``websocket.http.response.start`` then ``websocket.http.response.body`` until
``more_body`` is false). Once accepted it sends ``websocket.send`` messages and,
at the end, one ``websocket.close``.

:meth:`WebSocketOrder.send` parses a message into a small typed value, checks it
against :data:`TRANSITIONS` and moves on. A malformed message or one out of order
is the app's bug and raises :class:`~trio_asgi.ASGIProtocolError`; a send or close
after the app closed is a send on a closed connection and raises
:class:`~trio_asgi.ClientDisconnected`, the ``OSError`` ASGI asks for. Either way
the state does not change. Extra keys never raise. Values the table cannot know
about (is the subprotocol one the client offered? is the close code allowed?) are
checked by :class:`~._websocket.WebSocketConnection`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from .._errors import ASGIProtocolError, ClientDisconnected
from ._asgi_http import parse_headers


class WebSocketAppState(enum.Enum):
    #: ``websocket.connect`` is (about to be) delivered: the app must accept, close or deny.
    CONNECTING = enum.auto()
    #: Accepted: the app sends messages until it closes.
    CONNECTED = enum.auto()
    #: A denial response has started; body messages follow until ``more_body`` is false.
    RESPONSE = enum.auto()
    #: The app closed, rejected, or finished its denial response: nothing more may be sent.
    CLOSED = enum.auto()


class AppEvent(enum.Enum):
    """What an app message means for the order (``more_body`` splits the body message)."""

    ACCEPT = "websocket.accept"
    SEND = "websocket.send"
    CLOSE = "websocket.close"
    RESPONSE_START = "websocket.http.response.start"
    RESPONSE_BODY = "websocket.http.response.body (more_body)"
    RESPONSE_END = "websocket.http.response.body"


@dataclass(frozen=True, slots=True)
class Accept:
    subprotocol: str | None
    headers: list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Send:
    #: ``str`` for a text message, ``bytes`` for a binary one.
    data: str | bytes


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ResponseStart:
    status: int
    headers: list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class ResponseBody:
    body: bytes
    more_body: bool


AppMessage: TypeAlias = Accept | Send | Close | ResponseStart | ResponseBody

_C = WebSocketAppState
_E = AppEvent

#: (state, event) -> next state. Every pair not listed is an error.
TRANSITIONS: Final[dict[tuple[WebSocketAppState, AppEvent], WebSocketAppState]] = {
    (_C.CONNECTING, _E.ACCEPT): _C.CONNECTED,
    (_C.CONNECTING, _E.CLOSE): _C.CLOSED,
    (_C.CONNECTING, _E.RESPONSE_START): _C.RESPONSE,
    (_C.CONNECTED, _E.SEND): _C.CONNECTED,
    (_C.CONNECTED, _E.CLOSE): _C.CLOSED,
    (_C.RESPONSE, _E.RESPONSE_BODY): _C.RESPONSE,
    (_C.RESPONSE, _E.RESPONSE_END): _C.CLOSED,
}

#: Pairs that are sends on a closed connection rather than bugs: ClientDisconnected.
CLOSED_SENDS: Final = frozenset({(_C.CLOSED, _E.SEND), (_C.CLOSED, _E.CLOSE)})

_WHEN: Final = {
    _C.CONNECTING: "before the WebSocket is accepted",
    _C.CONNECTED: "after websocket.accept",
    _C.RESPONSE: "during a denial response",
    _C.CLOSED: "after the WebSocket was closed",
}


def _parse_accept(message: Mapping[str, Any]) -> tuple[AppEvent, AppMessage]:
    subprotocol = message.get("subprotocol")
    if subprotocol is not None and not isinstance(subprotocol, str):
        raise ASGIProtocolError(
            f"websocket.accept: subprotocol must be a str or None, got {subprotocol!r}"
        )
    headers = parse_headers(message.get("headers", ()), "websocket.accept headers")
    return _E.ACCEPT, Accept(subprotocol, headers)


def _parse_send(message: Mapping[str, Any]) -> tuple[AppEvent, AppMessage]:
    data = message.get("bytes")
    text = message.get("text")
    if type(text) is str and data is None:
        return _E.SEND, Send(text)
    if type(data) is bytes and text is None:
        return _E.SEND, Send(data)
    if (data is None) == (text is None):
        raise ASGIProtocolError("websocket.send: give exactly one of 'bytes' and 'text'")
    if text is not None:
        if not isinstance(text, str):
            raise ASGIProtocolError(
                f"websocket.send: text must be a str, got {type(text).__name__}"
            )
        return _E.SEND, Send(text)
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ASGIProtocolError(f"websocket.send: bytes must be bytes, got {type(data).__name__}")
    return _E.SEND, Send(bytes(data))


def _parse_close(message: Mapping[str, Any]) -> tuple[AppEvent, AppMessage]:
    code = message.get("code")
    if code is None:
        code = 1000
    elif type(code) is not int:  # bool is an int subclass, and not a close code
        raise ASGIProtocolError(f"websocket.close: code must be an int, got {code!r}")
    reason = message.get("reason")
    if reason is None:
        reason = ""
    elif not isinstance(reason, str):
        raise ASGIProtocolError(f"websocket.close: reason must be a str, got {reason!r}")
    return _E.CLOSE, Close(code, reason)


def _parse_response_start(message: Mapping[str, Any]) -> tuple[AppEvent, AppMessage]:
    status = message.get("status")
    if type(status) is not int:
        raise ASGIProtocolError(
            f"websocket.http.response.start: status must be an int, got {status!r}"
        )
    headers = parse_headers(message.get("headers", ()), "websocket.http.response.start headers")
    return _E.RESPONSE_START, ResponseStart(status, headers)


def _parse_response_body(message: Mapping[str, Any]) -> tuple[AppEvent, AppMessage]:
    body = message.get("body", b"")
    if not isinstance(body, bytes | bytearray | memoryview):
        raise ASGIProtocolError(
            f"websocket.http.response.body: body must be bytes, got {type(body).__name__}"
        )
    more_body = message.get("more_body", False)
    if not isinstance(more_body, bool):
        raise ASGIProtocolError(
            f"websocket.http.response.body: more_body must be a bool, got {more_body!r}"
        )
    event = _E.RESPONSE_BODY if more_body else _E.RESPONSE_END
    return event, ResponseBody(bytes(body), more_body)


_Parser: TypeAlias = Callable[[Mapping[str, Any]], tuple[AppEvent, AppMessage]]

#: Message type -> parser; an unknown type is an error.
PARSERS: Final[dict[str, _Parser]] = {
    "websocket.accept": _parse_accept,
    "websocket.send": _parse_send,
    "websocket.close": _parse_close,
    "websocket.http.response.start": _parse_response_start,
    "websocket.http.response.body": _parse_response_body,
}


class WebSocketOrder:
    """Checks each message a WebSocket app sends against :data:`TRANSITIONS`.

    Check, perform, commit: :meth:`check` parses a message and works out the next
    state without moving; the session performs it, then :meth:`commit` moves. A
    message the connection refuses before writing anything (an unoffered
    subprotocol, a reserved close code) is not committed, so the app may still
    send a valid one.
    """

    __slots__ = ("_next_state", "state")

    def __init__(self) -> None:
        self.state = WebSocketAppState.CONNECTING
        self._next_state = WebSocketAppState.CONNECTING

    def check(self, message: Mapping[str, Any]) -> AppMessage:
        """Parse ``message`` and work out the state it leads to; :meth:`commit` moves there.

        Returns:
            The parsed message; its class says what the server should do.

        Raises:
            ASGIProtocolError: the message is malformed or not valid in this state.
            ClientDisconnected: ``websocket.send`` or ``websocket.close`` after the app
                closed the WebSocket.
        """
        if type(message) is dict and message.get("type") == "websocket.send":
            # The message of every echo: checked in line, without the general dispatch.
            parsed = _parse_send(message)[1]
            if self.state is _C.CONNECTED:
                self._next_state = _C.CONNECTED
                return parsed
        elif not isinstance(message, Mapping):
            raise ASGIProtocolError(f"an ASGI message must be a dict, got {type(message).__name__}")
        kind = message.get("type")
        parser = PARSERS.get(kind) if isinstance(kind, str) else None
        if parser is None:
            raise ASGIProtocolError(f"unknown message type {kind!r} on a websocket scope")
        event, parsed = parser(message)
        next_state = TRANSITIONS.get((self.state, event))
        if next_state is None:
            if (self.state, event) in CLOSED_SENDS:
                raise ClientDisconnected(f"{kind} after the WebSocket was closed")
            raise ASGIProtocolError(f"{event.value} is not allowed {_WHEN[self.state]}")
        self._next_state = next_state
        return parsed

    def commit(self) -> None:
        """Move to the state the last :meth:`check` worked out."""
        self.state = self._next_state

    def send(self, message: Mapping[str, Any]) -> AppMessage:
        """:meth:`check` and :meth:`commit` in one.

        Raises:
            ASGIProtocolError: the message is malformed or not valid in this state.
            ClientDisconnected: a send or close after the app closed the WebSocket.
        """
        parsed = self.check(message)
        self.commit()
        return parsed
