"""The per-stream ASGI-facing lifecycle table, over every (state, input) pair (h2's model)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_asgi._protocol._http2_streams import (
    IN_FLIGHT,
    TRANSITIONS,
    StreamInput,
    StreamState,
    StreamStateError,
    next_state,
)


@given(st.sampled_from(StreamState), st.sampled_from(StreamInput))
def test_every_pair_moves_to_a_state_or_is_refused(state, event) -> None:
    try:
        after = next_state(state, event)
    except StreamStateError:
        assert (state, event) not in TRANSITIONS
    else:
        assert after is TRANSITIONS[state, event]
        assert isinstance(after, StreamState)


@given(st.lists(st.sampled_from(StreamInput), max_size=30))
def test_any_input_sequence_keeps_the_invariants(events) -> None:
    state = StreamState.RECEIVING
    for event in events:
        try:
            after = next_state(state, event)
        except StreamStateError:
            continue
        if state in (StreamState.CLOSED, StreamState.RESET):
            assert after is state  # the end states are absorbing
        if event is StreamInput.RESET and state is not StreamState.CLOSED:
            assert after is StreamState.RESET
        state = after


def test_every_state_can_be_reset() -> None:
    for state in StreamState:
        assert (state, StreamInput.RESET) in TRANSITIONS


def test_every_state_is_reachable_and_every_live_state_can_end() -> None:
    reachable = {StreamState.RECEIVING}
    frontier = [StreamState.RECEIVING]
    while frontier:
        state = frontier.pop()
        for (source, _), target in TRANSITIONS.items():
            if source is state and target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(StreamState)
    for state in IN_FLIGHT:
        assert any(
            source is state and target not in IN_FLIGHT
            for (source, _), target in TRANSITIONS.items()
        )


@pytest.mark.parametrize(
    ("sequence", "end"),
    [
        ([StreamInput.RECV_END, StreamInput.SEND_HEAD, StreamInput.SEND_END], StreamState.CLOSED),
        (
            [
                StreamInput.SEND_HEAD,
                StreamInput.SEND_END,
                StreamInput.RECV_BODY,
                StreamInput.RECV_END,
            ],
            StreamState.CLOSED,
        ),
        ([StreamInput.RECV_BODY, StreamInput.RESET, StreamInput.RECV_BODY], StreamState.RESET),
    ],
)
def test_typical_lives(sequence, end) -> None:
    state = StreamState.RECEIVING
    for event in sequence:
        state = next_state(state, event)
    assert state is end


def test_sending_before_the_head_is_refused() -> None:
    with pytest.raises(StreamStateError):
        next_state(StreamState.RECEIVING, StreamInput.SEND_BODY)
