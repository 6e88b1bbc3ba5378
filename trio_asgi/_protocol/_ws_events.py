"""The sans-IO WebSocket connection's events and its state table.

:class:`~._websocket.WebSocketConnection` returns these events and moves through these
states; they are here so the connection's module holds only the connection (they are
re-exported there, where callers import them from).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from .._errors import ASGIProtocolError, ClientDisconnected

# --- events -----------------------------------------------------------------------------------


class NeedData(enum.Enum):
    #: Nothing more can be parsed until more bytes arrive (or nothing ever will: see ``state``).
    NEED_DATA = enum.auto()


NEED_DATA: Final = NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class Message:
    """A whole data message: ``str`` from a text message, ``bytes`` from a binary one."""

    data: str | bytes


@dataclass(frozen=True, slots=True)
class PingReceived:
    """The peer pinged; its pong is already queued in the pending output (unless we are closing)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class PongReceived:
    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer's close frame: 1005 when it carried no code. Our answer (if due) is queued."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The byte stream ended without a close frame (RFC 6455 section 7.1.5: code 1006)."""

    code: int = 1006
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The peer broke the protocol; we queued a close frame with ``code`` (unless we had sent one).

    ``code`` is 1002 (framing), 1007 (invalid UTF-8 or compressed data) or 1009 (too big);
    ``reason`` is what our close frame says; ``detail`` is for the log.
    """

    code: int
    reason: str
    detail: str = field(default="", compare=False)


Event: TypeAlias = (
    Message | PingReceived | PongReceived | CloseReceived | ConnectionLost | ProtocolViolation
)


# --- states -----------------------------------------------------------------------------------


class WebSocketState(enum.Enum):
    #: The upgrade request was valid; the app has not answered yet.
    HANDSHAKE = enum.auto()
    #: The app's denial response has started; body chunks follow.
    DENYING = enum.auto()
    #: An HTTP response was sent instead of the 101: write it, then close the connection.
    REJECTED = enum.auto()
    #: Accepted: messages flow both ways.
    OPEN = enum.auto()
    #: We sent our close frame and wait for the peer's.
    LOCAL_CLOSING = enum.auto()
    #: The WebSocket is over (close frames exchanged, the peer vanished, or we failed it):
    #: write the pending output, then close the connection.
    CLOSED = enum.auto()


class Closer(enum.Enum):
    #: We sent the first close frame (or failed the connection).
    LOCAL = enum.auto()
    #: The peer sent the first close frame (or vanished).
    REMOTE = enum.auto()


class Action(enum.Enum):
    """What can happen to a WebSocket connection, as :data:`TRANSITIONS` sees it."""

    ACCEPT = "accept"
    REJECT = "reject"
    DENY_START = "start a denial response"
    DENY_BODY = "send denial response body"
    DENY_END = "finish a denial response"
    SEND = "send"
    CLOSE = "close"
    PEER_CLOSE = "receive a close frame"
    PEER_GONE = "lose the connection"
    FAIL = "fail the connection"


_S = WebSocketState
_A = Action

#: (state, action) -> next state; a missing pair is an error (see ``_next``).
TRANSITIONS: Final[dict[tuple[WebSocketState, Action], WebSocketState]] = {
    (_S.HANDSHAKE, _A.ACCEPT): _S.OPEN,
    (_S.HANDSHAKE, _A.REJECT): _S.REJECTED,
    (_S.HANDSHAKE, _A.DENY_START): _S.DENYING,
    (_S.HANDSHAKE, _A.PEER_GONE): _S.CLOSED,
    (_S.DENYING, _A.DENY_BODY): _S.DENYING,
    (_S.DENYING, _A.DENY_END): _S.REJECTED,
    (_S.DENYING, _A.PEER_GONE): _S.CLOSED,
    (_S.OPEN, _A.SEND): _S.OPEN,
    (_S.OPEN, _A.CLOSE): _S.LOCAL_CLOSING,
    (_S.OPEN, _A.PEER_CLOSE): _S.CLOSED,
    (_S.OPEN, _A.PEER_GONE): _S.CLOSED,
    (_S.OPEN, _A.FAIL): _S.CLOSED,
    (_S.LOCAL_CLOSING, _A.PEER_CLOSE): _S.CLOSED,
    (_S.LOCAL_CLOSING, _A.PEER_GONE): _S.CLOSED,
    (_S.LOCAL_CLOSING, _A.FAIL): _S.CLOSED,
}

#: In these states the WebSocket is over for the app: its actions raise ClientDisconnected.
_GONE_STATES: Final = frozenset({_S.LOCAL_CLOSING, _S.CLOSED})


def next_state(state: WebSocketState, action: Action) -> WebSocketState:
    """Where ``action`` leads from ``state`` by :data:`TRANSITIONS`.

    Raises:
        ClientDisconnected: the WebSocket is closed (or closing) on our side.
        ASGIProtocolError: any other pair the table does not list.
    """
    following = TRANSITIONS.get((state, action))
    if following is not None:
        return following
    if state in _GONE_STATES:
        raise ClientDisconnected(f"cannot {action.value}: the WebSocket is closed")
    raise ASGIProtocolError(f"cannot {action.value} while the WebSocket is in state {state.name}")
