"""The ASGI websocket message-order table and message validation.

As h2 tests its state machines: every (state, message) pair either moves to the
state the table names or raises, leaving the state as it was.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_asgi import ASGIProtocolError, ClientDisconnected
from trio_asgi._protocol._asgi_ws_order import (
    CLOSED_SENDS,
    TRANSITIONS,
    Accept,
    AppEvent,
    Close,
    ResponseBody,
    ResponseStart,
    Send,
    WebSocketAppState,
    WebSocketOrder,
)

State = WebSocketAppState

#: One valid message for each event.
SAMPLES: dict[AppEvent, dict[str, Any]] = {
    AppEvent.ACCEPT: {"type": "websocket.accept"},
    AppEvent.SEND: {"type": "websocket.send", "text": "hi"},
    AppEvent.CLOSE: {"type": "websocket.close"},
    AppEvent.RESPONSE_START: {"type": "websocket.http.response.start", "status": 403},
    AppEvent.RESPONSE_BODY: {
        "type": "websocket.http.response.body",
        "body": b"x",
        "more_body": True,
    },
    AppEvent.RESPONSE_END: {"type": "websocket.http.response.body", "body": b"y"},
}

#: A way into each state from CONNECTING, using only valid messages.
PATHS: dict[State, list[AppEvent]] = {
    State.CONNECTING: [],
    State.CONNECTED: [AppEvent.ACCEPT],
    State.RESPONSE: [AppEvent.RESPONSE_START],
    State.CLOSED: [AppEvent.ACCEPT, AppEvent.CLOSE],
}


def order_in(state: State) -> WebSocketOrder:
    order = WebSocketOrder()
    for event in PATHS[state]:
        order.send(SAMPLES[event])
    assert order.state is state
    return order


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("event", list(AppEvent))
def test_every_pair_moves_as_the_table_says_or_raises(state: State, event: AppEvent) -> None:
    order = order_in(state)
    expected = TRANSITIONS.get((state, event))
    if expected is not None:
        order.send(SAMPLES[event])
        assert order.state is expected
        return
    error = ClientDisconnected if (state, event) in CLOSED_SENDS else ASGIProtocolError
    with pytest.raises(error):
        order.send(SAMPLES[event])
    assert order.state is state


def test_every_state_is_reachable_and_every_state_but_closed_has_a_way_out() -> None:
    assert {order_in(state).state for state in State} == set(State)
    sources = {state for state, _ in TRANSITIONS}
    assert sources == set(State) - {State.CLOSED}


def test_the_other_ways_into_closed() -> None:
    order = WebSocketOrder()
    order.send({"type": "websocket.close", "code": 1000})  # before accept: HTTP 403
    assert order.state is State.CLOSED
    order = order_in(State.RESPONSE)
    order.send(SAMPLES[AppEvent.RESPONSE_BODY])
    order.send(SAMPLES[AppEvent.RESPONSE_END])
    assert order.state is State.CLOSED


MESSAGES = st.one_of(
    st.sampled_from(list(SAMPLES.values())),
    st.sampled_from(
        [
            {"type": "websocket.send", "bytes": b"x"},
            {"type": "websocket.send"},
            {"type": "websocket.accept", "subprotocol": 1},
            {"type": "websocket.close", "code": "1000"},
            {"type": "websocket.http.response.start", "status": "200"},
            {"type": "websocket.http.response.body", "more_body": "yes"},
            {"type": "websocket.receive"},
            {"type": "http.response.start", "status": 200},
            {"no": "type"},
        ]
    ),
)


@given(st.lists(MESSAGES, max_size=10))
def test_any_sequence_moves_by_the_table_or_raises_without_moving(
    messages: list[dict[str, Any]],
) -> None:
    order = WebSocketOrder()
    for message in messages:
        before = order.state
        try:
            order.send(message)
        except (ASGIProtocolError, ClientDisconnected):
            assert order.state is before
        else:
            assert order.state in {TRANSITIONS[key] for key in TRANSITIONS if key[0] is before}


# --- what each message is parsed into -----------------------------------------------------------


def test_accept_is_parsed() -> None:
    message = {
        "type": "websocket.accept",
        "subprotocol": "chat",
        "headers": [(b"x-a", b"1"), [b"x-b", b"2"]],
        "extra": "ignored",
    }
    assert WebSocketOrder().send(message) == Accept("chat", [(b"x-a", b"1"), (b"x-b", b"2")])
    assert WebSocketOrder().send({"type": "websocket.accept", "subprotocol": None}) == Accept(
        None, []
    )


@pytest.mark.parametrize(
    ("message", "parsed"),
    [
        ({"text": "t"}, Send("t")),
        ({"bytes": b"b"}, Send(b"b")),
        ({"bytes": None, "text": "t"}, Send("t")),
        ({"bytes": b"b", "text": None}, Send(b"b")),
        ({"bytes": bytearray(b"b")}, Send(b"b")),
        ({"text": ""}, Send("")),
        ({"bytes": b""}, Send(b"")),
    ],
)
def test_send_is_parsed(message: dict[str, Any], parsed: Send) -> None:
    order = order_in(State.CONNECTED)
    result = order.send({"type": "websocket.send", **message})
    assert result == parsed
    assert type(result.data) is type(parsed.data)  # a bytearray must become bytes


@pytest.mark.parametrize(
    "message",
    [
        {},
        {"bytes": None, "text": None},
        {"bytes": b"b", "text": "t"},
        {"text": b"not str"},
        {"bytes": "not bytes"},
        {"bytes": 1},
    ],
)
def test_invalid_sends(message: dict[str, Any]) -> None:
    order = order_in(State.CONNECTED)
    with pytest.raises(ASGIProtocolError, match=r"websocket\.send"):
        order.send({"type": "websocket.send", **message})
    assert order.state is State.CONNECTED


@pytest.mark.parametrize(
    ("message", "parsed"),
    [
        ({}, Close(1000, "")),
        ({"code": None, "reason": None}, Close(1000, "")),
        ({"code": 4000, "reason": "bye"}, Close(4000, "bye")),
    ],
)
def test_close_is_parsed(message: dict[str, Any], parsed: Close) -> None:
    assert order_in(State.CONNECTED).send({"type": "websocket.close", **message}) == parsed


@pytest.mark.parametrize(
    "message",
    [
        {"type": "websocket.close", "code": "1000"},
        {"type": "websocket.close", "code": True},
        {"type": "websocket.close", "code": 1000.0},
        {"type": "websocket.close", "reason": b"bytes"},
        {"type": "websocket.accept", "subprotocol": b"chat"},
        {"type": "websocket.accept", "headers": "x-a: 1"},
        {"type": "websocket.accept", "headers": [(b"x-a",)]},
        {"type": "websocket.accept", "headers": [("x-a", "1")]},
        {"type": "websocket.accept", "headers": 5},
        {"type": "websocket.http.response.start"},
        {"type": "websocket.http.response.start", "status": True},
        {"type": "websocket.http.response.start", "status": 200, "headers": [(b"a", 1)]},
        {"type": "websocket.unknown"},
        {"type": None},
        {"type": 1},
        {},
    ],
)
def test_invalid_messages_before_accept(message: dict[str, Any]) -> None:
    order = WebSocketOrder()
    with pytest.raises(ASGIProtocolError):
        order.send(message)
    assert order.state is State.CONNECTING


def test_a_message_must_be_a_mapping() -> None:
    with pytest.raises(ASGIProtocolError, match="dict"):
        WebSocketOrder().send(["websocket.accept"])  # type: ignore[arg-type]


def test_denial_response_is_parsed() -> None:
    order = WebSocketOrder()
    start = {"type": "websocket.http.response.start", "status": 401, "headers": [(b"a", b"b")]}
    assert order.send(start) == ResponseStart(401, [(b"a", b"b")])
    assert order.send({"type": "websocket.http.response.body", "more_body": True}) == ResponseBody(
        b"", True
    )
    body = {"type": "websocket.http.response.body", "body": memoryview(b"end")}
    assert order.send(body) == ResponseBody(b"end", False)
    assert order.state is State.CLOSED


@pytest.mark.parametrize(
    "message",
    [
        {"type": "websocket.http.response.body", "body": "str"},
        {"type": "websocket.http.response.body", "more_body": 1},
    ],
)
def test_invalid_denial_bodies(message: dict[str, Any]) -> None:
    order = order_in(State.RESPONSE)
    with pytest.raises(ASGIProtocolError):
        order.send(message)
    assert order.state is State.RESPONSE


def test_send_and_close_after_close_raise_oserror() -> None:
    order = order_in(State.CLOSED)
    for message in (SAMPLES[AppEvent.SEND], SAMPLES[AppEvent.CLOSE]):
        with pytest.raises(ClientDisconnected) as info:
            order.send(message)
        assert isinstance(info.value, OSError)


@pytest.mark.parametrize(
    ("state", "event", "words"),
    [
        (State.CONNECTING, AppEvent.SEND, "before the WebSocket is accepted"),
        (State.CONNECTED, AppEvent.ACCEPT, "after websocket.accept"),
        (State.RESPONSE, AppEvent.CLOSE, "during a denial response"),
        (State.CLOSED, AppEvent.ACCEPT, "after the WebSocket was closed"),
    ],
)
def test_order_errors_say_what_and_when(state: State, event: AppEvent, words: str) -> None:
    with pytest.raises(ASGIProtocolError, match=words):
        order_in(state).send(SAMPLES[event])


def test_check_does_not_move_until_commit() -> None:
    order = WebSocketOrder()
    assert isinstance(order.check(SAMPLES[AppEvent.ACCEPT]), Accept)
    assert order.state is State.CONNECTING
    order.commit()
    assert order.state is State.CONNECTED
