"""The order and shape of the messages an app sends for one HTTP response.

ASGI's HTTP protocol is a small state machine: ``http.response.start`` once,
then ``http.response.body`` until ``more_body`` is false, then (with the
trailers extension) ``http.response.trailers`` until ``more_trailers`` is
false. Anything else is the app's bug: :meth:`ResponseOrder.advance` raises
:class:`~trio_asgi.ASGIProtocolError` and the message is not sent. Extra keys
in a message are allowed, as the spec says.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

from .._errors import ASGIProtocolError
from .._types import Message


class ResponseState(enum.Enum):
    #: Nothing sent yet: only ``http.response.start`` is valid.
    START = enum.auto()
    #: The head was sent; body messages until ``more_body`` is false.
    BODY = enum.auto()
    #: The body is done and trailers were announced; trailer messages follow.
    TRAILERS = enum.auto()
    #: The response is complete; nothing more may be sent.
    DONE = enum.auto()


@dataclass(slots=True)
class ResponseStart:
    status: int
    headers: list[tuple[bytes, bytes]]
    trailers: bool


@dataclass(slots=True)
class ResponseBody:
    body: bytes
    more: bool


@dataclass(slots=True)
class ResponseTrailers:
    headers: list[tuple[bytes, bytes]]
    more: bool


Parsed: TypeAlias = ResponseStart | ResponseBody | ResponseTrailers


def parse_headers(value: object, what: str = "headers") -> list[tuple[bytes, bytes]]:
    """Check an ASGI header list: an iterable of two-item sequences of bytes."""
    if type(value) is list and all(
        type(item) is tuple and len(item) == 2 and type(item[0]) is bytes and type(item[1]) is bytes
        for item in value
    ):
        return value  # the common shape, already right: no copy
    if isinstance(value, bytes | str | dict) or not isinstance(value, Iterable):
        raise ASGIProtocolError(f"{what} must be an iterable of [name, value] byte pairs")
    headers: list[tuple[bytes, bytes]] = []
    for item in value:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise ASGIProtocolError(
                f"{what}: each header must be a [name, value] pair, got {item!r}"
            )
        name, data = item
        if type(name) is not bytes or type(data) is not bytes:
            if not (isinstance(name, bytes) and isinstance(data, bytes)):
                raise ASGIProtocolError(
                    f"{what}: header names and values must be bytes, got {item!r}"
                )
            name, data = bytes(name), bytes(data)
        headers.append((name, data))
    return headers


def _flag(message: Message, key: str) -> bool:
    value = message.get(key, False)
    if not isinstance(value, bool):
        raise ASGIProtocolError(f"{message['type']}: {key} must be a bool, got {value!r}")
    return value


def _parse_start(message: Message) -> ResponseStart:
    status = message.get("status")
    if type(status) is not int:
        raise ASGIProtocolError(f"http.response.start: status must be an int, got {status!r}")
    if not 200 <= status <= 599:
        # 1xx are not final responses: early hints and upgrades have their own messages.
        raise ASGIProtocolError(f"http.response.start: status {status} is not a final status")
    return ResponseStart(
        status, parse_headers(message.get("headers", ())), _flag(message, "trailers")
    )


def _parse_body(message: Message) -> ResponseBody:
    body = message.get("body", b"")
    if type(body) is not bytes:
        if not isinstance(body, bytes | bytearray | memoryview):
            raise ASGIProtocolError(
                f"http.response.body: body must be bytes, got {type(body).__name__}"
            )
        body = bytes(body)
    return ResponseBody(body, _flag(message, "more_body"))


def _parse_trailers(message: Message) -> ResponseTrailers:
    return ResponseTrailers(
        parse_headers(message.get("headers", ()), "trailers"), _flag(message, "more_trailers")
    )


_Parser: TypeAlias = Callable[[Message], Any]

#: (state, message type) -> (parser, state while more follows, state when this is the last)
#: ``None`` as the last state means "TRAILERS if trailers were announced, else DONE".
_TRANSITIONS: dict[
    tuple[ResponseState, str], tuple[_Parser, ResponseState, ResponseState | None]
] = {
    (ResponseState.START, "http.response.start"): (
        _parse_start,
        ResponseState.BODY,
        ResponseState.BODY,
    ),
    (ResponseState.BODY, "http.response.body"): (_parse_body, ResponseState.BODY, None),
    (ResponseState.TRAILERS, "http.response.trailers"): (
        _parse_trailers,
        ResponseState.TRAILERS,
        ResponseState.DONE,
    ),
}


class ResponseOrder:
    """Checks each message an app sends against the table above.

    Check, perform, commit: :meth:`check` parses a message and works out the next
    state without moving; the caller performs the message and then calls
    :meth:`commit`. A message the connection refuses before writing anything
    (an invalid header value) is simply not committed, so the app may still send
    a valid one.
    """

    __slots__ = ("_next_state", "_next_trailers", "state", "trailers")

    def __init__(self) -> None:
        self.state = ResponseState.START
        self.trailers = False
        self._next_state = ResponseState.START
        self._next_trailers = False

    def check(self, message: Message) -> Parsed:
        """Parse ``message`` and work out the state it leads to; :meth:`commit` moves there.

        Raises:
            ASGIProtocolError: the message is malformed or not valid in this state.
        """
        try:
            kind = message["type"]
        except (KeyError, TypeError):
            raise ASGIProtocolError(
                f"an ASGI message must be a dict with a 'type', got {message!r}"
            ) from None
        # not a str: no entry (and a list or dict type must not escape as TypeError)
        entry = _TRANSITIONS.get((self.state, kind)) if isinstance(kind, str) else None
        if entry is None:
            raise ASGIProtocolError(
                f"unexpected {kind!r} message while the response is in state {self.state.name}"
            )
        parser, more_state, last_state = entry
        parsed: Parsed = parser(message)
        trailers = self.trailers
        if isinstance(parsed, ResponseStart):
            trailers = parsed.trailers
            next_state = more_state
        elif parsed.more:
            next_state = more_state
        elif last_state is None:
            next_state = ResponseState.TRAILERS if trailers else ResponseState.DONE
        else:
            next_state = last_state
        self._next_state = next_state
        self._next_trailers = trailers
        return parsed

    def commit(self) -> None:
        """Move to the state the last :meth:`check` worked out."""
        self.state = self._next_state
        self.trailers = self._next_trailers

    def advance(self, message: Message) -> Parsed:
        """:meth:`check` and :meth:`commit` in one.

        Raises:
            ASGIProtocolError: the message is malformed or not valid in this state.
        """
        parsed = self.check(message)
        self.commit()
        return parsed
