"""The HTTP/1.1 connection's lifecycle table, h2-style, and how HTTP11Connection drives it.

Every (state, input) pair either moves to the state the table names or raises
LifecycleError and leaves the state as it was; every state is reachable and every
state has a way to CLOSED. Then the sans-IO connection, driven by a real h11
client, lands in the state each exchange should leave it in.
"""

from __future__ import annotations

from typing import Any

import pytest
from http11_helpers import respond
from hypothesis import given
from hypothesis import strategies as st

from trio_asgi._errors import ASGIProtocolError, ClientDisconnected
from trio_asgi._protocol._http11 import BodyData, ConnectionInput, ConnectionState, Fate
from trio_asgi._protocol._http11_lifecycle import (
    FATES,
    LIFECYCLE,
    Lifecycle,
    LifecycleError,
)
from trio_asgi._protocol._ws_events import TRANSITIONS, Action, WebSocketState, next_state

State = ConnectionState
Input = ConnectionInput


def lifecycle_in(state: State) -> Lifecycle:
    lifecycle = Lifecycle()
    lifecycle.state = state
    return lifecycle


@given(st.sampled_from(State), st.sampled_from(Input))
def test_every_pair_moves_as_the_table_says_or_raises(state: State, event: Input) -> None:
    lifecycle = lifecycle_in(state)
    expected = LIFECYCLE[state].get(event)
    if expected is None:
        with pytest.raises(LifecycleError, match=state.name):
            lifecycle.advance(event)
        assert lifecycle.state is state
    else:
        assert lifecycle.advance(event) is expected
        assert lifecycle.state is expected
        assert isinstance(lifecycle.fate, Fate)


@given(st.lists(st.sampled_from(Input), max_size=20))
def test_any_sequence_stays_in_the_table(events: list[Input]) -> None:
    lifecycle = Lifecycle()
    for event in events:
        before = lifecycle.state
        try:
            lifecycle.advance(event)
        except LifecycleError:
            assert lifecycle.state is before
        assert lifecycle.state in LIFECYCLE


def test_every_state_has_a_fate_and_a_row() -> None:
    assert set(FATES) == set(State) == set(LIFECYCLE)


def reachable(start: State) -> set[State]:
    seen = {start}
    todo = [start]
    while todo:
        for following in LIFECYCLE[todo.pop()].values():
            if following not in seen:
                seen.add(following)
                todo.append(following)
    return seen


def test_every_state_is_reachable_and_every_state_can_close() -> None:
    assert reachable(State.IDLE) == set(State)
    for state in State:
        assert State.CLOSED in reachable(state)
        # A client that vanishes can end any state at once.
        assert LIFECYCLE[state][Input.CLOSE_NOW] is State.CLOSED


def test_only_a_finished_request_is_kept_alive() -> None:
    # KEEP_ALIVE only where nothing of a request is owed: a request head is only
    # taken in the idle states.
    for state, row in LIFECYCLE.items():
        if Input.REQUEST_HEAD in row:
            assert FATES[state] in (Fate.KEEP_ALIVE, Fate.FINISH_ARRIVING)


# --- the sans-IO connection drives the table ------------------------------------------------


def test_a_keep_alive_exchange_returns_to_idle(hp: Any) -> None:
    conn = hp.conn()
    client = hp.Client()
    hp.feed(conn, client.request())
    assert conn.lifecycle.state is State.SERVING
    client.response(respond(conn))
    assert conn.fate is Fate.KEEP_ALIVE


def test_connection_close_closes_after_the_response(hp: Any) -> None:
    conn = hp.conn()
    client = hp.Client()
    hp.feed(conn, client.request(b"GET", b"/", [(b"Connection", b"close")]))
    assert conn.lifecycle.state is State.SERVING_LAST
    client.response(respond(conn))
    assert conn.fate is Fate.CLOSE


def test_a_response_before_the_body_drains_then_keeps_alive(hp: Any) -> None:
    conn = hp.conn()
    client = hp.Client()
    data = client.request(b"POST", b"/", body=b"x" * 10)
    head_only = data[: data.index(b"\r\n\r\n") + 4]
    hp.feed(conn, head_only)
    respond(conn)
    assert conn.fate is Fate.DRAIN
    assert hp.feed(conn, data[len(head_only) :])[0] == BodyData(b"x" * 10)
    assert conn.fate is Fate.KEEP_ALIVE
    assert conn.reusable


def test_close_requested_while_responding_takes_only_an_arriving_request(hp: Any) -> None:
    conn = hp.conn()
    client = hp.Client()
    hp.feed(conn, client.request())
    head = conn.response_head(200, [(b"content-length", b"2")], close=False)
    assert b"connection: close" not in head.lower()  # the client was told keep-alive
    conn.lifecycle.advance(Input.CLOSE_REQUESTED)  # then a shutdown began
    client.response(head + conn.response_body(b"ok", final=True))
    assert conn.fate is Fate.FINISH_ARRIVING
    conn.start_next_cycle()
    client.next_cycle()
    hp.feed(conn, client.request())
    assert conn.lifecycle.state is State.SERVING_LAST  # served, and its head says close
    assert b"connection: close" in conn.response_head(200, [], close=False).lower()


def test_error_response_only_serialises(hp: Any) -> None:
    conn = hp.conn()
    client = hp.Client()
    data = client.request(b"POST", b"/", body=b"abc")
    head_only = data[: data.index(b"\r\n\r\n") + 4]
    hp.feed(conn, head_only)
    state = conn.lifecycle.state
    assert conn.error_response(500).startswith(b"HTTP/1.1 500 ")
    # Neither the parser nor the lifecycle moved: the body can still be read.
    assert conn.lifecycle.state is state
    assert hp.feed(conn, data[len(head_only) :])[0] == BodyData(b"abc")
    conn.lifecycle.advance(Input.ERROR_ANSWERED)  # what the I/O layer does once written
    assert conn.fate is Fate.LINGER_CLOSE


# --- the WebSocket connection's table, the same way -----------------------------------------


@given(st.sampled_from(WebSocketState), st.sampled_from(Action))
def test_every_websocket_pair_moves_as_the_table_says_or_raises(
    state: WebSocketState, action: Action
) -> None:
    expected = TRANSITIONS.get((state, action))
    if expected is None:
        with pytest.raises((ASGIProtocolError, ClientDisconnected)):
            next_state(state, action)
    else:
        assert next_state(state, action) is expected


def test_every_websocket_state_is_reachable_and_ends_closed() -> None:
    edges: dict[WebSocketState, set[WebSocketState]] = {state: set() for state in WebSocketState}
    for (state, _), following in TRANSITIONS.items():
        edges[state].add(following)

    def reach(start: WebSocketState) -> set[WebSocketState]:
        seen, todo = {start}, [start]
        while todo:
            for following in edges[todo.pop()] - seen:
                seen.add(following)
                todo.append(following)
        return seen

    assert reach(WebSocketState.HANDSHAKE) == set(WebSocketState)
    for state in WebSocketState:
        if state is not WebSocketState.REJECTED:  # an HTTP answer: the connection just closes
            assert WebSocketState.CLOSED in reach(state)
