"""The HTTP/1.1 connection's lifecycle: keep alive, drain, linger or close, as one table.

A connection carries requests one after another. Whether it takes the next one,
first reads and drops the rest of a request body, closes gently (an error reply
must reach the client rather than be destroyed by a RST), or closes at once was
once a handful of booleans; here it is :data:`LIFECYCLE`, a ``(state, input) ->
state`` table like the ASGI message-order tables. The sans-IO
:class:`~._http11.HTTP11Connection` feeds it what it sees (a request head, the end
of a response, the end of a drained body); the I/O layer feeds what only it knows
(an error reply written, a write that failed, a shutdown) and acts on the
:class:`Fate` of the state it lands in.
"""

from __future__ import annotations

import enum
from typing import Final


class ConnectionState(enum.Enum):
    """Where an HTTP/1.1 connection stands between and around its requests."""

    #: Waiting for a request head; nothing is owed to the client.
    IDLE = enum.auto()
    #: Asked to close while idle: a request whose first bytes already arrived (or
    #: arrive within a moment of a response that said keep-alive) is still read and
    #: served, with ``Connection: close``; with none, close.
    IDLE_LAST = enum.auto()
    #: A request is being served, its response head not yet made.
    SERVING = enum.auto()
    #: A request is being served; its response head says ``Connection: close`` (the
    #: client asked, HTTP/1.0, the app said so, a request limit, or a shutdown).
    SERVING_LAST = enum.auto()
    #: The response head said keep-alive; the response is in progress.
    RESPONDING = enum.auto()
    #: The response head said keep-alive, but the connection was asked to close since:
    #: after the response, take only a request already arriving.
    RESPONDING_LAST = enum.auto()
    #: The response is complete but part of the request body is unread: read and drop
    #: it (bounded), then take the next request.
    DRAINING = enum.auto()
    #: Close gently: shut our side, read and drop what the client still sends for a
    #: moment, then close (an error reply or unread bytes must not turn into a RST).
    LINGERING = enum.auto()
    #: Close now: the client is gone, the connection is broken, or nothing is owed.
    CLOSED = enum.auto()


class ConnectionInput(enum.Enum):
    """What can happen to an HTTP/1.1 connection, as the lifecycle table sees it."""

    #: A request head was parsed.
    REQUEST_HEAD = "a request head"
    #: Close after the current response (at once if there is none).
    CLOSE_REQUESTED = "a request to close"
    #: The response head was made, and it says keep-alive.
    HEAD_KEEP_ALIVE = "a keep-alive response head"
    #: The response is complete and the request was read whole.
    RESPONSE_DONE = "a complete response"
    #: The response is complete and part of the request body is unread.
    RESPONSE_DONE_BODY_LEFT = "a complete response with the request body unread"
    #: The app failed after its response started (maybe after it ended); the request
    #: was read whole.
    ABANDONED = "an abandoned response"
    #: The same, with part of the request body unread.
    ABANDONED_BODY_LEFT = "an abandoned response with the request body unread"
    #: We answered with an error reply of our own (400, 408, 413, 500, 503...).
    ERROR_ANSWERED = "an error reply"
    #: The unread request body was read and dropped.
    BODY_DRAINED = "a drained body"
    #: The unread request body was too long or too slow to drain.
    DRAIN_FAILED = "a failed drain"
    #: Close at once: the client is gone, it idled out, a write failed, or nothing is owed.
    CLOSE_NOW = "a close"
    #: The connection was handed to another protocol (a WebSocket).
    UPGRADED = "an upgrade"


class Fate(enum.Enum):
    """What the I/O layer does with a connection once a request is over."""

    #: Read the next request.
    KEEP_ALIVE = enum.auto()
    #: Serve a request only if it is already arriving; else close.
    FINISH_ARRIVING = enum.auto()
    #: Read and drop the rest of the request body, then read the next request.
    DRAIN = enum.auto()
    #: Shut our side, read and drop for a moment, then close.
    LINGER_CLOSE = enum.auto()
    #: Close at once.
    CLOSE = enum.auto()
    #: Still serving a request: nothing to decide yet.
    SERVING = enum.auto()


_S = ConnectionState
_I = ConnectionInput

#: How a request that is being served ends, the same from every serving state but
#: for where a complete response leads.
_ENDINGS: Final = {
    _I.ABANDONED: _S.CLOSED,
    _I.ABANDONED_BODY_LEFT: _S.LINGERING,
    _I.ERROR_ANSWERED: _S.LINGERING,
    _I.CLOSE_NOW: _S.CLOSED,
}

#: (state, input) -> next state. A pair that is not here is a bug in the I/O layer.
LIFECYCLE: Final[dict[ConnectionState, dict[ConnectionInput, ConnectionState]]] = {
    _S.IDLE: {
        _I.REQUEST_HEAD: _S.SERVING,
        _I.CLOSE_REQUESTED: _S.IDLE_LAST,
        _I.ERROR_ANSWERED: _S.LINGERING,
        _I.ABANDONED: _S.CLOSED,  # the app failed after its response was complete
        _I.CLOSE_NOW: _S.CLOSED,
    },
    _S.IDLE_LAST: {
        _I.REQUEST_HEAD: _S.SERVING_LAST,
        _I.CLOSE_REQUESTED: _S.IDLE_LAST,
        _I.ERROR_ANSWERED: _S.LINGERING,
        _I.ABANDONED: _S.CLOSED,
        _I.CLOSE_NOW: _S.CLOSED,
    },
    _S.SERVING: {
        _I.CLOSE_REQUESTED: _S.SERVING_LAST,
        _I.HEAD_KEEP_ALIVE: _S.RESPONDING,
        _I.UPGRADED: _S.CLOSED,
        **_ENDINGS,
    },
    _S.SERVING_LAST: {
        _I.CLOSE_REQUESTED: _S.SERVING_LAST,
        _I.RESPONSE_DONE: _S.CLOSED,
        _I.RESPONSE_DONE_BODY_LEFT: _S.LINGERING,
        _I.UPGRADED: _S.CLOSED,
        **_ENDINGS,
    },
    _S.RESPONDING: {
        _I.CLOSE_REQUESTED: _S.RESPONDING_LAST,
        _I.RESPONSE_DONE: _S.IDLE,
        _I.RESPONSE_DONE_BODY_LEFT: _S.DRAINING,
        **_ENDINGS,
    },
    _S.RESPONDING_LAST: {
        _I.CLOSE_REQUESTED: _S.RESPONDING_LAST,
        _I.RESPONSE_DONE: _S.IDLE_LAST,
        _I.RESPONSE_DONE_BODY_LEFT: _S.LINGERING,
        **_ENDINGS,
    },
    _S.DRAINING: {
        _I.BODY_DRAINED: _S.IDLE,
        _I.DRAIN_FAILED: _S.LINGERING,
        _I.CLOSE_REQUESTED: _S.LINGERING,
        _I.ABANDONED_BODY_LEFT: _S.LINGERING,
        _I.CLOSE_NOW: _S.CLOSED,
    },
    _S.LINGERING: {
        _I.CLOSE_REQUESTED: _S.LINGERING,
        _I.ERROR_ANSWERED: _S.LINGERING,
        _I.ABANDONED: _S.LINGERING,
        _I.ABANDONED_BODY_LEFT: _S.LINGERING,
        _I.CLOSE_NOW: _S.CLOSED,
    },
    _S.CLOSED: {
        _I.CLOSE_REQUESTED: _S.CLOSED,
        _I.ABANDONED: _S.CLOSED,
        _I.ABANDONED_BODY_LEFT: _S.CLOSED,
        _I.CLOSE_NOW: _S.CLOSED,
    },
}

#: What the I/O layer does in each state.
FATES: Final[dict[ConnectionState, Fate]] = {
    _S.IDLE: Fate.KEEP_ALIVE,
    _S.IDLE_LAST: Fate.FINISH_ARRIVING,
    _S.SERVING: Fate.SERVING,
    _S.SERVING_LAST: Fate.SERVING,
    _S.RESPONDING: Fate.SERVING,
    _S.RESPONDING_LAST: Fate.SERVING,
    _S.DRAINING: Fate.DRAIN,
    _S.LINGERING: Fate.LINGER_CLOSE,
    _S.CLOSED: Fate.CLOSE,
}


class LifecycleError(Exception):
    """An input the lifecycle table has no move for in the current state (a bug of ours)."""


class Lifecycle:
    """One connection's place in :data:`LIFECYCLE`: keep alive, drain, linger or close."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = ConnectionState.IDLE

    def advance(self, event: ConnectionInput) -> ConnectionState:
        """Move on ``event``; the new state.

        Raises:
            LifecycleError: the table has no move for ``event`` in this state.
        """
        state = LIFECYCLE[self.state].get(event)
        if state is None:
            raise LifecycleError(f"{event.value} while the connection is {self.state.name}")
        self.state = state
        return state

    @property
    def fate(self) -> Fate:
        return FATES[self.state]
