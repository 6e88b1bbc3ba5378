"""The lifespan message-order table: every (phase, app message) pair.

The expected transitions are written out by hand, not read from the module's table.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_asgi._errors import ASGIProtocolError
from trio_asgi._protocol._lifespan import LifespanOrder, LifespanPhase

P = LifespanPhase
STARTUP_OK, STARTUP_FAILED = "lifespan.startup.complete", "lifespan.startup.failed"
SHUTDOWN_OK, SHUTDOWN_FAILED = "lifespan.shutdown.complete", "lifespan.shutdown.failed"
TYPES = [
    STARTUP_OK,
    STARTUP_FAILED,
    SHUTDOWN_OK,
    SHUTDOWN_FAILED,
    # messages the server sends, not the app; and things that are no lifespan message
    "lifespan.startup",
    "lifespan.shutdown",
    "http.response.start",
    "",
    "lifespan.failed",
    "LIFESPAN.STARTUP.COMPLETE",
]

EXPECTED: dict[tuple[LifespanPhase, str], LifespanPhase] = {
    (P.STARTING, STARTUP_OK): P.STARTED,
    (P.STARTING, STARTUP_FAILED): P.FAILED,
    (P.STOPPING, SHUTDOWN_OK): P.STOPPED,
    (P.STOPPING, SHUTDOWN_FAILED): P.STOPPED,
}


def order_in(phase: LifespanPhase) -> LifespanOrder:
    """An order brought to ``phase`` the way the server drives it."""
    order = LifespanOrder()
    if phase is P.STARTED:
        order.advance({"type": STARTUP_OK})
    elif phase is P.FAILED:
        order.advance({"type": STARTUP_FAILED})
    elif phase is P.STOPPING:
        order.advance({"type": STARTUP_OK})
        order.begin_shutdown()
    elif phase is P.STOPPED:
        order.advance({"type": STARTUP_OK})
        order.begin_shutdown()
        order.advance({"type": SHUTDOWN_OK})
    assert order.phase is phase
    return order


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("phase", list(LifespanPhase))
def test_every_pair(phase: LifespanPhase, kind: str) -> None:
    order = order_in(phase)
    expected = EXPECTED.get((phase, kind))
    if expected is None:
        with pytest.raises(ASGIProtocolError):
            order.advance({"type": kind})
        assert order.phase is phase
    else:
        result = order.advance({"type": kind, "message": "why"})
        assert order.phase is expected
        assert result == ("why" if kind.endswith(".failed") else None)


def test_starts_in_starting() -> None:
    assert LifespanOrder().phase is P.STARTING


def test_shutdown_begins_from_started() -> None:
    order = order_in(P.STARTED)
    order.begin_shutdown()
    assert order.phase is P.STOPPING


@pytest.mark.parametrize(
    ("msg", "text"),
    [
        ({"type": STARTUP_FAILED}, ""),
        ({"type": STARTUP_FAILED, "message": "db down"}, "db down"),
        ({"type": STARTUP_FAILED, "message": 42}, "42"),
        ({"type": STARTUP_FAILED, "message": None}, "None"),
        ({"type": STARTUP_FAILED, "message": b"raw"}, "b'raw'"),
    ],
)
def test_failure_text(msg: dict[str, Any], text: str) -> None:
    assert LifespanOrder().advance(msg) == text


def test_complete_ignores_extra_keys() -> None:
    assert LifespanOrder().advance({"type": STARTUP_OK, "message": "x", "other": 1}) is None


@pytest.mark.parametrize(
    "msg",
    [
        None,
        1,
        "lifespan.startup.complete",
        [],
        [("type", STARTUP_OK)],
        {},
        {"message": "x"},
        {"type": None},
        {"type": 1},
        {"type": b"lifespan.startup.complete"},
        {"type": ["x"]},
    ],
)
def test_malformed_messages_refused(msg: Any) -> None:
    order = LifespanOrder()
    with pytest.raises(ASGIProtocolError):
        order.advance(msg)
    assert order.phase is P.STARTING


_VALUES = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=5),
    st.binary(max_size=3),
    st.lists(st.integers(), max_size=2),
)
_MESSAGES = st.one_of(
    st.builds(
        lambda kind, rest: {**rest, "type": kind},
        st.sampled_from(TYPES) | _VALUES,
        st.dictionaries(st.sampled_from(["message", "x"]), _VALUES),
    ),
    _VALUES,
)


@settings(max_examples=100, deadline=None)
@given(phase=st.sampled_from(list(LifespanPhase)), msg=_MESSAGES)
def test_any_message_in_any_phase(phase: LifespanPhase, msg: Any) -> None:
    order = order_in(phase)
    try:
        result = order.advance(msg)
    except ASGIProtocolError:
        assert order.phase is phase
    else:
        assert order.phase is EXPECTED[(phase, msg["type"])]
        assert result is None or isinstance(result, str)
