"""The simple-frame reader (``_ws_frames_fast``) reads bytes exactly as wsproto's decoder does.

:class:`WebSocketConnection` reads whole, final, masked text and binary frames itself
and leaves every other frame to wsproto. The proof that this changes nothing: the
same bytes, split the same way, fed to a connection with the simple-frame reader and
to one without (``simple_frames=False``, wsproto reads everything) give the same
events, the same bytes to write and the same state after every chunk: valid traffic
(fragments, control frames between them, every length encoding), the invalid kinds of
:func:`trio_asgi.testing.strategies.invalid_ws_frames`, and mutated or cut variants.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ws_protocol_helpers import drain, open_pair

from trio_asgi._protocol._websocket import WebSocketConnection
from trio_asgi._protocol._ws_frames_fast import take_simple_frame, unmask
from trio_asgi.testing._ws_frames import Frame, Opcode, mask_payload
from trio_asgi.testing._ws_strategies import invalid_ws_frames, ws_client_frames

MAX_SIZE = 2000
KEY = b"\x37\xfa\x21\x3d"


def opened(**options: Any) -> WebSocketConnection:
    return open_pair(max_size=MAX_SIZE, per_message_deflate=False, **options)[1]


def observe(ws: WebSocketConnection) -> tuple[object, ...]:
    events = drain(ws)
    return (events, ws.pending_output(), ws.state, ws.message_bytes, ws.closing_handshake_done)


def assert_read_alike(data: bytes, cuts: list[int]) -> None:
    fast, plain = opened(), opened(simple_frames=False)
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for start, end in itertools.pairwise(bounds):
        for ws in (fast, plain):
            ws.receive_data(data[start:end])
        assert observe(fast) == observe(plain), (start, end)
    for ws in (fast, plain):
        ws.receive_data(b"")  # EOF
    assert observe(fast) == observe(plain)


_CUTS = st.lists(st.integers(0, 10_000), max_size=6)


@settings(max_examples=300)
@given(ws_client_frames(max_message_size=MAX_SIZE), _CUTS)
def test_valid_traffic_reads_alike(traffic: Any, cuts: list[int]) -> None:
    assert_read_alike(b"".join(frame.data for frame in traffic.frames), cuts)


@settings(max_examples=300)
@given(invalid_ws_frames(max_message_size=MAX_SIZE), _CUTS)
def test_invalid_traffic_reads_alike(traffic: Any, cuts: list[int]) -> None:
    assert_read_alike(traffic.data, cuts)


@settings(max_examples=300)
@given(
    ws_client_frames(max_message_size=300),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=3),
    st.integers(0, 10_000),
    _CUTS,
)
def test_mutated_and_cut_traffic_reads_alike(
    traffic: Any, flips: list[tuple[int, int]], keep: int, cuts: list[int]
) -> None:
    data = bytearray(b"".join(frame.data for frame in traffic.frames) or b"\x81")
    for where, value in flips:
        data[where % len(data)] = value
    assert_read_alike(bytes(data[: keep % (len(data) + 1)]), cuts)


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_unmask_is_the_rfc_xor(payload: bytes, key: bytes) -> None:
    assert unmask(payload, key) == mask_payload(payload, key)


@pytest.mark.parametrize(
    "frame",
    [
        Frame(Opcode.TEXT, b"hi", fin=False, mask=KEY),  # a fragment
        Frame(Opcode.CONTINUATION, b"hi", mask=KEY),
        Frame(Opcode.PING, b"hi", mask=KEY),  # control frames
        Frame(Opcode.CLOSE, b"", mask=KEY),
        Frame(Opcode.TEXT, b"hi", rsv=4, mask=KEY),  # compressed or reserved bits
        Frame(Opcode.BINARY, b"hi", mask=None),  # unmasked: a protocol error
        Frame(Opcode.TEXT, b"hi", length_form="16-bit", mask=KEY),  # not the shortest length
        Frame(Opcode.BINARY, b"x" * 70_000, mask=KEY),  # a 64-bit length
        Frame(Opcode.BINARY, b"x" * (MAX_SIZE + 1), mask=KEY),  # over the limit
        Frame(0x3, b"hi", mask=KEY),  # a reserved opcode
    ],
    ids=repr,
)
def test_only_simple_frames_are_taken(frame: Frame) -> None:
    buffer = bytearray(frame.data)
    assert take_simple_frame(buffer, MAX_SIZE) is None
    assert buffer == frame.data


@pytest.mark.parametrize("size", [0, 1, 125, 126, 1000, MAX_SIZE])
def test_a_simple_frame_is_taken_whole_and_only_when_whole(size: int) -> None:
    frame = Frame(Opcode.BINARY, bytes(range(256)) * 8, mask=KEY)
    frame = Frame(Opcode.BINARY, frame.payload[:size], mask=KEY)
    following = Frame(Opcode.PING, b"p", mask=KEY).data
    for cut in range(len(frame.data)):
        partial = bytearray(frame.data[:cut])
        assert take_simple_frame(partial, MAX_SIZE) is None
    buffer = bytearray(frame.data + following)
    assert take_simple_frame(buffer, MAX_SIZE) == (0x82, frame.payload)
    assert buffer == following
