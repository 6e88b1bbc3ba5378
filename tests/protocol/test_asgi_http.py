"""The ASGI HTTP response message-order table: every (state, message) pair, h2-style.

The expected transitions are written out here by hand, independently of the table
in the module, so a wrong entry there shows up as a difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_asgi._errors import ASGIProtocolError
from trio_asgi._protocol._asgi_http import (
    ResponseBody,
    ResponseOrder,
    ResponseStart,
    ResponseState,
    ResponseTrailers,
    parse_headers,
)

S = ResponseState
START, BODY, TRAILERS = "http.response.start", "http.response.body", "http.response.trailers"
OTHER_TYPES = [
    "http.request",
    "http.disconnect",
    "http.response.push",
    "http.response.pathsend",
    "http.response.early_hint",
    "http.response.zerocopysend",
    "websocket.send",
    "lifespan.startup.complete",
    "",
    "HTTP.RESPONSE.START",
    "http.response.start ",
]

#: (state, type, last, announce trailers) -> next state; missing pairs must raise.
#: ``last`` is the message's more_body/more_trailers being false.
EXPECTED: dict[tuple[ResponseState, str, bool, bool], ResponseState] = {
    (S.START, START, True, False): S.BODY,
    (S.START, START, True, True): S.BODY,
    (S.BODY, BODY, False, False): S.BODY,
    (S.BODY, BODY, True, False): S.DONE,
    (S.BODY, BODY, False, True): S.BODY,
    (S.BODY, BODY, True, True): S.TRAILERS,
    (S.TRAILERS, TRAILERS, False, True): S.TRAILERS,
    (S.TRAILERS, TRAILERS, True, True): S.DONE,
}


def message(kind: str, *, last: bool = True, trailers: bool = False) -> dict[str, Any]:
    """A valid message of ``kind`` (and, for other types, something with that type)."""
    if kind == START:
        return {"type": kind, "status": 200, "headers": [(b"a", b"b")], "trailers": trailers}
    if kind == BODY:
        return {"type": kind, "body": b"x", "more_body": not last}
    if kind == TRAILERS:
        return {"type": kind, "headers": [], "more_trailers": not last}
    return {"type": kind}


def order_in(state: ResponseState, *, trailers: bool = False) -> ResponseOrder:
    """A machine brought to ``state`` by valid messages."""
    order = ResponseOrder()
    path = {
        S.START: [],
        S.BODY: [message(START, trailers=trailers)],
        S.TRAILERS: [message(START, trailers=True), message(BODY)],
        S.DONE: [message(START, trailers=trailers), message(BODY)]
        + ([message(TRAILERS)] if trailers else []),
    }[state]
    for item in path:
        order.advance(item)
    assert order.state is state
    return order


def all_pairs() -> Iterator[tuple[ResponseState, str, bool, bool]]:
    for state in ResponseState:
        for kind in [START, BODY, TRAILERS, *OTHER_TYPES]:
            for last in (True, False):
                for trailers in (True, False):
                    if state is S.TRAILERS and not trailers:
                        continue  # unreachable: TRAILERS only follows announced trailers
                    yield state, kind, last, trailers


@pytest.mark.parametrize(("state", "kind", "last", "trailers"), list(all_pairs()))
def test_every_pair(state: ResponseState, kind: str, last: bool, trailers: bool) -> None:
    order = order_in(state, trailers=trailers)
    msg = message(kind, last=last, trailers=trailers)
    # "last" means nothing to http.response.start: the table lists it under True
    expected = EXPECTED.get((state, kind, last or kind == START, trailers))
    if expected is None:
        with pytest.raises(ASGIProtocolError):
            order.advance(msg)
        assert order.state is state
    else:
        parsed = order.advance(msg)
        assert order.state is expected
        assert (
            type(parsed)
            is {START: ResponseStart, BODY: ResponseBody, TRAILERS: ResponseTrailers}[kind]
        )


def test_a_whole_response_with_trailers() -> None:
    order = ResponseOrder()
    start = order.advance({"type": START, "status": 200, "trailers": True})
    assert start == ResponseStart(200, [], True)
    assert order.trailers
    assert order.advance({"type": BODY, "body": b"a", "more_body": True}) == ResponseBody(
        b"a", True
    )
    assert order.advance({"type": BODY}) == ResponseBody(b"", False)
    assert order.state is S.TRAILERS
    first = order.advance({"type": TRAILERS, "headers": [(b"x", b"1")], "more_trailers": True})
    assert first == ResponseTrailers([(b"x", b"1")], True)
    assert order.advance({"type": TRAILERS}) == ResponseTrailers([], False)
    assert order.state is S.DONE


def test_defaults() -> None:
    order = ResponseOrder()
    assert order.advance({"type": START, "status": 404}) == ResponseStart(404, [], False)
    assert order.advance({"type": BODY}) == ResponseBody(b"", False)
    assert order.state is S.DONE


# --- message shapes ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 204, 299, 304, 418, 599])
def test_final_statuses_accepted(status: int) -> None:
    assert ResponseOrder().advance({"type": START, "status": status}).status == status


@pytest.mark.parametrize(
    "status", [100, 101, 103, 199, 0, -200, 600, 999, 1000, True, "200", 200.0, None, b"200"]
)
def test_bad_statuses_refused(status: Any) -> None:
    order = ResponseOrder()
    with pytest.raises(ASGIProtocolError):
        order.advance({"type": START, "status": status})
    assert order.state is S.START


def test_missing_status_refused() -> None:
    with pytest.raises(ASGIProtocolError):
        ResponseOrder().advance({"type": START})


@pytest.mark.parametrize("value", [1, 0, "yes", None, b"", [], 1.0])
@pytest.mark.parametrize(
    ("state", "kind", "key"),
    [
        (S.START, START, "trailers"),
        (S.BODY, BODY, "more_body"),
        (S.TRAILERS, TRAILERS, "more_trailers"),
    ],
)
def test_flags_must_be_bools(state: ResponseState, kind: str, key: str, value: Any) -> None:
    order = order_in(state, trailers=True)
    with pytest.raises(ASGIProtocolError, match=key):
        order.advance({**message(kind, trailers=True), key: value})
    assert order.state is state


class Name(bytes):
    """A bytes subclass, as some apps produce."""


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"a", b"1"), (b"b", b"2")], [(b"a", b"1"), (b"b", b"2")]),
        ([[b"a", b"1"]], [(b"a", b"1")]),
        (((b"a", b"1"),), [(b"a", b"1")]),
        ((pair for pair in [(b"a", b"1")]), [(b"a", b"1")]),
        ([(Name(b"a"), Name(b"1"))], [(b"a", b"1")]),
        ([(b"a", b"")], [(b"a", b"")]),
        ([], []),
    ],
)
def test_header_shapes_accepted(headers: Any, expected: list[tuple[bytes, bytes]]) -> None:
    parsed = parse_headers(headers)
    assert parsed == expected
    assert all(type(n) is bytes and type(v) is bytes for n, v in parsed)


@pytest.mark.parametrize(
    "headers",
    [
        b"a: 1",
        "a: 1",
        {b"a": b"1"},
        None,
        5,
        [(b"a",)],
        [(b"a", b"1", b"2")],
        [b"ab"],
        [("a", "1")],
        [(b"a", "1")],
        [(bytearray(b"a"), b"1")],
        [(b"a", memoryview(b"1"))],
        [(b"a", None)],
        [None],
    ],
)
def test_header_shapes_refused(headers: Any) -> None:
    with pytest.raises(ASGIProtocolError):
        parse_headers(headers)
    with pytest.raises(ASGIProtocolError):
        ResponseOrder().advance({"type": START, "status": 200, "headers": headers})
    with pytest.raises(ASGIProtocolError, match="trailers"):
        order_in(S.TRAILERS).advance({"type": TRAILERS, "headers": headers})


@pytest.mark.parametrize("body", [b"x", bytearray(b"x"), memoryview(b"x"), Name(b"x")])
def test_body_bytes_like_accepted(body: Any) -> None:
    parsed = order_in(S.BODY).advance({"type": BODY, "body": body})
    assert type(parsed.body) is bytes
    assert parsed.body == b"x"


@pytest.mark.parametrize("body", ["x", None, 1, [b"x"]])
def test_body_not_bytes_refused(body: Any) -> None:
    with pytest.raises(ASGIProtocolError):
        order_in(S.BODY).advance({"type": BODY, "body": body})


def test_extra_keys_ignored() -> None:
    order = ResponseOrder()
    order.advance({"type": START, "status": 200, "x-debug": object(), "more_body": "ignored"})
    order.advance({"type": BODY, "body": b"", "trailers": "not a flag here", "extra": 1})
    assert order.state is S.DONE


@pytest.mark.parametrize(
    "msg",
    [
        None,
        1,
        "http.response.start",
        b"x",
        [],
        ["type"],
        {},
        {"status": 200},
        {"type": None},
        {"type": 1},
        {"type": b"http.response.start"},
        {"type": ["http.response.start"]},
        {"type": {"a": 1}},
    ],
)
def test_malformed_messages_refused(msg: Any) -> None:
    order = ResponseOrder()
    with pytest.raises(ASGIProtocolError):
        order.advance(msg)
    assert order.state is S.START


# --- hypothesis: any state, any message: a valid move or ASGIProtocolError ---------------------

_ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.binary(max_size=4),
    st.text(max_size=4),
    st.lists(st.tuples(st.binary(max_size=3), st.binary(max_size=3)), max_size=2),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
_TYPES = st.one_of(
    st.sampled_from([START, BODY, TRAILERS, *OTHER_TYPES]), st.text(max_size=8), _ANY_VALUE
)
_KEYS = st.sampled_from(
    ["status", "headers", "trailers", "body", "more_body", "more_trailers", "extra"]
)
_MESSAGES = st.one_of(
    st.builds(lambda t, rest: {"type": t, **rest}, _TYPES, st.dictionaries(_KEYS, _ANY_VALUE)),
    st.builds(
        lambda kind, last, trailers, rest: {**message(kind, last=last, trailers=trailers), **rest},
        st.sampled_from([START, BODY, TRAILERS]),
        st.booleans(),
        st.booleans(),
        st.dictionaries(st.sampled_from(["extra", "x"]), _ANY_VALUE, max_size=1),
    ),
    st.dictionaries(_KEYS, _ANY_VALUE),
    _ANY_VALUE,
)
_SUCCESSORS = {
    S.START: {S.BODY},
    S.BODY: {S.BODY, S.TRAILERS, S.DONE},
    S.TRAILERS: {S.TRAILERS, S.DONE},
    S.DONE: set(),
}


@settings(max_examples=200, deadline=None)
@given(
    state=st.sampled_from(list(ResponseState)),
    trailers=st.booleans(),
    messages=st.lists(_MESSAGES, min_size=1, max_size=4),
)
def test_any_message_in_any_state(
    state: ResponseState, trailers: bool, messages: list[Any]
) -> None:
    order = order_in(state, trailers=trailers or state is S.TRAILERS)
    for msg in messages:
        before = order.state
        try:
            parsed = order.advance(msg)
        except ASGIProtocolError:
            assert order.state is before
            continue
        assert order.state in _SUCCESSORS[before]
        kind = msg["type"]
        assert (before, kind) in {(S.START, START), (S.BODY, BODY), (S.TRAILERS, TRAILERS)}
        assert type(parsed) in (ResponseStart, ResponseBody, ResponseTrailers)


def test_check_does_not_move_until_commit() -> None:
    # check -> perform -> commit: a message the connection refuses is never committed.
    order = ResponseOrder()
    parsed = order.check({"type": "http.response.start", "status": 200, "trailers": True})
    assert isinstance(parsed, ResponseStart)
    assert order.state is ResponseState.START
    assert not order.trailers
    order.commit()
    assert order.state is ResponseState.BODY
    assert order.trailers
    order.check({"type": "http.response.body", "body": b"x"})
    assert order.state is ResponseState.BODY
    order.commit()
    assert order.state is ResponseState.TRAILERS
