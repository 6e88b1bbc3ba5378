"""Each stream's lifecycle as the ASGI side sees it, as a table, and its bookkeeping.

h2 keeps RFC 9113's stream states (idle, open, half-closed, closed). The I/O layer
needs a coarser and different view: is the request body still arriving, has the
response started, has it ended, was the stream reset. :data:`TRANSITIONS` is that
view; every (state, input) pair not in it is a :class:`StreamStateError` (a bug in
the caller, or an app sending out of order, which the ASGI order tables catch first).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class StreamState(enum.Enum):
    #: Request headers received, body still arriving, no response yet (h2: open).
    RECEIVING = enum.auto()
    #: Request complete, no response yet (h2: half-closed remote).
    REQUEST_DONE = enum.auto()
    #: Response started while the request body still arrives.
    RESPONDING_RECEIVING = enum.auto()
    #: Response started, request complete.
    RESPONDING = enum.auto()
    #: Response ended, request body still arriving (h2: half-closed local).
    RESPONSE_DONE = enum.auto()
    #: Both directions ended.
    CLOSED = enum.auto()
    #: Reset by either side: the app gets ``http.disconnect``, sends are dropped.
    RESET = enum.auto()


class StreamInput(enum.Enum):
    RECV_BODY = enum.auto()
    RECV_END = enum.auto()
    SEND_HEAD = enum.auto()
    SEND_BODY = enum.auto()
    SEND_END = enum.auto()
    RESET = enum.auto()


S = StreamState
I = StreamInput  # noqa: E741

TRANSITIONS: dict[tuple[StreamState, StreamInput], StreamState] = {
    (S.RECEIVING, I.RECV_BODY): S.RECEIVING,
    (S.RECEIVING, I.RECV_END): S.REQUEST_DONE,
    (S.RECEIVING, I.SEND_HEAD): S.RESPONDING_RECEIVING,
    (S.RECEIVING, I.RESET): S.RESET,
    (S.REQUEST_DONE, I.SEND_HEAD): S.RESPONDING,
    (S.REQUEST_DONE, I.RESET): S.RESET,
    (S.RESPONDING_RECEIVING, I.RECV_BODY): S.RESPONDING_RECEIVING,
    (S.RESPONDING_RECEIVING, I.RECV_END): S.RESPONDING,
    (S.RESPONDING_RECEIVING, I.SEND_BODY): S.RESPONDING_RECEIVING,
    (S.RESPONDING_RECEIVING, I.SEND_END): S.RESPONSE_DONE,
    (S.RESPONDING_RECEIVING, I.RESET): S.RESET,
    (S.RESPONDING, I.SEND_BODY): S.RESPONDING,
    (S.RESPONDING, I.SEND_END): S.CLOSED,
    (S.RESPONDING, I.RESET): S.RESET,
    (S.RESPONSE_DONE, I.RECV_BODY): S.RESPONSE_DONE,
    (S.RESPONSE_DONE, I.RECV_END): S.CLOSED,
    (S.RESPONSE_DONE, I.RESET): S.RESET,
    # Frames already in flight when a stream ends or is reset: nothing changes.
    (S.CLOSED, I.RESET): S.CLOSED,
    (S.RESET, I.RECV_BODY): S.RESET,
    (S.RESET, I.RECV_END): S.RESET,
    (S.RESET, I.RESET): S.RESET,
}

#: States in which the stream still counts as in flight (shutdown waits for it).
IN_FLIGHT = frozenset({S.RECEIVING, S.REQUEST_DONE, S.RESPONDING_RECEIVING, S.RESPONDING})


class StreamStateError(Exception):
    """An input the stream's state does not allow."""


def next_state(state: StreamState, event: StreamInput) -> StreamState:
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        raise StreamStateError(f"{event.name} in {state.name}") from None


@dataclass(slots=True)
class Stream:
    """One stream's bookkeeping beside h2's own."""

    stream_id: int
    state: StreamState = StreamState.RECEIVING
    #: HEAD, 1xx-final, 204 and 304 responses carry no body: sends are dropped.
    body_allowed: bool = True
    head_request: bool = False
    #: Body bytes handed to the caller and not yet reported read (``body_consumed``):
    #: bounded by the stream's receive window.
    unread: int = 0
    #: Request trailers, held until the END_STREAM that follows them.
    trailers: tuple[tuple[bytes, bytes], ...] = ()

    def apply(self, event: StreamInput) -> None:
        self.state = next_state(self.state, event)

    @property
    def in_flight(self) -> bool:
        return self.state in IN_FLIGHT
