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
from typing import Any, Final, TypeAlias

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
class ResponseFile:
    """``http.response.pathsend`` (``path``) or ``http.response.zerocopysend`` (``fd``)."""

    path: str | None
    fd: int
    offset: int | None
    count: int | None
    more: bool


@dataclass(slots=True)
class EarlyHint:
    links: list[bytes]


@dataclass(slots=True)
class ResponseTrailers:
    headers: list[tuple[bytes, bytes]]
    more: bool


Parsed: TypeAlias = ResponseStart | ResponseBody | ResponseTrailers | ResponseFile | EarlyHint


def parse_headers(value: object, what: str = "headers") -> list[tuple[bytes, bytes]]:
    """Check an ASGI header list: an iterable of two-item sequences of bytes."""
    if type(value) is list:
        for item in value:
            if not (
                type(item) is tuple
                and len(item) == 2
                and type(item[0]) is bytes
                and type(item[1]) is bytes
            ):
                break
        else:
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
    if value is not False and value is not True:
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


def _parse_pathsend(message: Message) -> ResponseFile:
    path = message.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ASGIProtocolError(
            f"http.response.pathsend: path must be an absolute str, got {path!r}"
        )
    return ResponseFile(path, -1, None, None, more=False)


def _optional_count(message: Message, key: str) -> int | None:
    value = message.get(key)
    if value is not None and (type(value) is not int or value < 0):
        raise ASGIProtocolError(f"{message['type']}: {key} must be an int >= 0, got {value!r}")
    return value


def _parse_zerocopy(message: Message) -> ResponseFile:
    file = message.get("file")
    try:
        fd = file if type(file) is int else file.fileno()  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError):
        fd = -1
    if type(fd) is not int or fd < 0:
        raise ASGIProtocolError(
            f"http.response.zerocopysend: file must be an open file object, got {file!r}"
        )
    return ResponseFile(
        None,
        fd,
        _optional_count(message, "offset"),
        _optional_count(message, "count"),
        _flag(message, "more_body"),
    )


def _parse_early_hint(message: Message) -> EarlyHint:
    links = message.get("links")
    if isinstance(links, bytes | str | dict) or not isinstance(links, Iterable):
        raise ASGIProtocolError("http.response.early_hint: links must be an iterable of bytes")
    checked = list(links)
    if not all(isinstance(link, bytes) for link in checked):
        raise ASGIProtocolError("http.response.early_hint: each link must be bytes")
    return EarlyHint([bytes(link) for link in checked])


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

#: The extensions' messages, valid only where the connection advertised them (the
#: ``allowed`` of :class:`ResponseOrder`); looked up only when the core table has no
#: entry, so plain responses pay nothing for them. ``pathsend`` is the whole body
#: (only right after the start); ``zerocopysend`` is a body message like any other;
#: an early hint comes before the response head (the stream drops one that is late).
_EXTENSION_TRANSITIONS: dict[
    tuple[ResponseState, str], tuple[_Parser, ResponseState, ResponseState | None]
] = {
    (ResponseState.START, "http.response.early_hint"): (
        _parse_early_hint,
        ResponseState.START,
        ResponseState.START,
    ),
    (ResponseState.BODY, "http.response.early_hint"): (
        _parse_early_hint,
        ResponseState.BODY,
        ResponseState.BODY,
    ),
    (ResponseState.BODY, "http.response.pathsend"): (_parse_pathsend, ResponseState.BODY, None),
    (ResponseState.BODY, "http.response.zerocopysend"): (
        _parse_zerocopy,
        ResponseState.BODY,
        None,
    ),
}

#: Every extension message type of the table above (what ``allowed`` may name).
EXTENSION_MESSAGES = frozenset(kind for _, kind in _EXTENSION_TRANSITIONS)

_Entry: TypeAlias = tuple[_Parser, ResponseState, ResponseState | None]


def _by_state(
    table: dict[tuple[ResponseState, str], _Entry],
) -> dict[ResponseState, dict[str, _Entry]]:
    """A table split by state: a message is looked up by its type alone, with no key
    tuple to build and no enum to hash per message (an Enum's hash runs in Python)."""
    return {state: {k: e for (s, k), e in table.items() if s is state} for state in ResponseState}


_CORE_BY_STATE: Final = _by_state(_TRANSITIONS)
_EXTENSIONS_BY_STATE: Final = _by_state(_EXTENSION_TRANSITIONS)


_CORE_START: Final = _CORE_BY_STATE[ResponseState.START]


class ResponseOrder:
    """Checks each message an app sends against the table above.

    Check, perform, commit: :meth:`check` parses a message and works out the next
    state without moving; the caller performs the message and then calls
    :meth:`commit`. A message the connection refuses before writing anything
    (an invalid header value) is simply not committed, so the app may still send
    a valid one.
    """

    __slots__ = (
        "_allowed",
        "_body_sent",
        "_entries",
        "_hint",
        "_next_state",
        "_next_trailers",
        "state",
        "trailers",
    )

    def __init__(self, allowed: frozenset[str] = frozenset()) -> None:
        #: The extension message types this response may use (see _EXTENSION_TRANSITIONS).
        self._allowed = allowed
        self._body_sent = False
        self._hint = False
        self.state = ResponseState.START
        #: The core table's entries for :attr:`state`, by message type.
        self._entries = _CORE_START
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
        entry = self._entries.get(kind) if isinstance(kind, str) else None
        if entry is None and isinstance(kind, str) and kind in self._allowed:
            entry = self._extension_entry(kind)
        if entry is None:
            raise ASGIProtocolError(
                f"unexpected {kind!r} message while the response is in state {self.state.name}"
            )
        parser, more_state, last_state = entry
        parsed: Parsed = parser(message)
        trailers = self.trailers
        self._hint = False
        if isinstance(parsed, EarlyHint):
            self._hint = True
            next_state = more_state
        elif isinstance(parsed, ResponseStart):
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

    def _extension_entry(
        self, kind: str
    ) -> tuple[_Parser, ResponseState, ResponseState | None] | None:
        if kind == "http.response.pathsend" and self._body_sent:
            return None  # the whole body: not mixed with body messages
        return _EXTENSIONS_BY_STATE[self.state].get(kind)

    def commit(self) -> None:
        """Move to the state the last :meth:`check` worked out."""
        if self.state is ResponseState.BODY and not self._hint:
            self._body_sent = True
        if self._next_state is not self.state:
            self.state = self._next_state
            self._entries = _CORE_BY_STATE[self.state]
        self.trailers = self._next_trailers

    def advance(self, message: Message) -> Parsed:
        """:meth:`check` and :meth:`commit` in one.

        Raises:
            ASGIProtocolError: the message is malformed or not valid in this state.
        """
        parsed = self.check(message)
        self.commit()
        return parsed
