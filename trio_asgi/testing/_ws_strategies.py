"""Hypothesis strategies for WebSocket traffic from a client, valid and invalid.

Valid traffic is a few data messages, each cut into fragments at arbitrary byte
offsets (a text message may be cut inside a UTF-8 sequence, which is legal),
with pings and unsolicited pongs between fragments, and an optional close.
Invalid traffic is valid traffic followed by one defect, with the close code a
server must answer it with (RFC 6455 section 7.4.1).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from hypothesis import strategies as st

from .._config import Config
from ._repr import CompactRepr
from ._ws_frames import Frame, LengthForm, Opcode, close_payload

#: Close codes a peer may send (RFC 6455 7.4 and the registered 1000-1011 range).
VALID_CLOSE_CODES = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999)
#: Close codes a peer must not send: out of range, reserved, or local-only (1005, 1006, 1015).
INVALID_CLOSE_CODES = (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535)
#: Byte sequences that are never valid UTF-8.
INVALID_UTF8 = (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82")

_MASKS = st.binary(min_size=4, max_size=4)
_CONTROL_PAYLOADS = st.binary(max_size=125)
_REASONS = st.text(max_size=30)  # at most 120 bytes of UTF-8: fits the 123 allowed
_FRAGMENT_CUTS = st.lists(st.integers(0, 1 << 20), max_size=3)


@dataclass(frozen=True, repr=False)
class WsTraffic(CompactRepr):
    """Frames a client sends, and what a server should make of them.

    Attributes:
        frames: The frames, in order.
        messages: The complete data messages (``str`` for text), in order.
        pings: The ping payloads, each owed a pong.
        close: ``(code, reason)`` of the closing frame as the app should see it
            (``(1005, "")`` for a close frame without a code), or ``None``.
    """

    frames: tuple[Frame, ...]
    messages: tuple[str | bytes, ...]
    pings: tuple[bytes, ...]
    close: tuple[int, str] | None

    @property
    def data(self) -> bytes:
        """All the frames' bytes."""
        return b"".join(frame.data for frame in self.frames)


@dataclass(frozen=True, repr=False)
class RawInvalidWsFrames(CompactRepr):
    """Valid traffic, then one defect.

    Attributes:
        data: The bytes to send after the handshake.
        frames: The frames, the defective one(s) last.
        kind: Which defect, a key of :data:`INVALID_WS_KINDS`.
        expected_close_code: The code the server must close with: 1002
            (protocol error), 1007 (invalid payload data) or 1009 (too big).
        messages_before: The complete messages before the defect, which the
            server may deliver first.
    """

    data: bytes
    frames: tuple[Frame, ...]
    kind: str
    expected_close_code: int
    messages_before: tuple[str | bytes, ...]

    def close_codes(self, app_codes: Collection[int] = ()) -> frozenset[int]:
        """The close codes a correct server may answer with.

        :attr:`expected_close_code`, unless the app closed first: a server that
        already sent the app's close frame (``app_codes``: the codes the app may
        close with, e.g. 1000 after the messages it expects) has nothing more to say
        about the defect.
        """
        return frozenset({self.expected_close_code, *app_codes})


def _cut_points(draw: st.DrawFn, size: int) -> list[int]:
    """Sorted cut offsets within ``size`` bytes; repeats give empty fragments."""
    return sorted(c % (size + 1) for c in draw(_FRAGMENT_CUTS))


def _fragments(draw: st.DrawFn, payload: bytes) -> list[bytes]:
    bounds = [0, *_cut_points(draw, len(payload)), len(payload)]
    return [payload[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def _controls(draw: st.DrawFn, pings: list[bytes]) -> list[Frame]:
    """Zero to two pings or unsolicited pongs, to put between fragments."""
    frames = []
    for is_ping in draw(st.lists(st.booleans(), max_size=2)):
        payload = draw(_CONTROL_PAYLOADS)
        if is_ping:
            pings.append(payload)
        frames.append(Frame(Opcode.PING if is_ping else Opcode.PONG, payload, mask=draw(_MASKS)))
    return frames


def _large(max_size: int) -> st.SearchStrategy[bytes]:
    return st.builds(
        lambda pattern, n: (pattern * (n // len(pattern) + 1))[:n],
        st.binary(min_size=1, max_size=8),
        st.integers(126, max(126, max_size)),
    )


@st.composite
def _message(draw: st.DrawFn, max_size: int) -> str | bytes:
    text = st.text(max_size=40).filter(lambda t: len(t.encode()) <= max_size)
    binary = st.binary(max_size=min(125, max_size))
    if max_size <= 125:
        return draw(text | binary)
    large = _large(max_size)
    return draw(text | binary | large.map(lambda b: b.hex()[:max_size]) | large)


def _message_frames(
    draw: st.DrawFn, opcode: Opcode, payload: bytes, pings: list[bytes]
) -> list[Frame]:
    """One data message as fragments, with control frames drawn between them."""
    fragments = _fragments(draw, payload)
    frames: list[Frame] = []
    for i, fragment in enumerate(fragments):
        if i:
            frames += draw(_controls(pings))
        last = i == len(fragments) - 1
        first_opcode = opcode if i == 0 else Opcode.CONTINUATION
        frames.append(Frame(first_opcode, fragment, fin=last, mask=draw(_MASKS)))
    return frames


@st.composite
def ws_client_frames(
    draw: st.DrawFn,
    *,
    max_messages: int = 4,
    max_message_size: int = 70_000,
    close: bool | None = None,
) -> WsTraffic:
    """Valid client-to-server WebSocket traffic (after the handshake).

    Text and binary messages (some larger than 125 and 65535 bytes, so every
    length encoding appears), fragmented at arbitrary offsets, pings and pongs
    between fragments and messages, every frame masked with a drawn key, and
    optionally a close frame (with or without code and reason) at the end.

    Args:
        max_messages: The most data messages.
        max_message_size: The largest message in bytes.
        close: End with a close frame (``True``), never (``False``), or either (``None``).

    Example:
        >>> from hypothesis import given
        >>> @given(ws_client_frames(close=True))
        ... def test_ends_with_close(traffic):
        ...     assert traffic.frames[-1].opcode == 0x8
        ...     assert traffic.close is not None
        >>> test_ends_with_close()
    """
    pings: list[bytes] = []
    frames: list[Frame] = []
    messages = draw(st.lists(_message(max_message_size), max_size=max_messages))
    for message in messages:
        frames += draw(_controls(pings))
        if isinstance(message, str):
            frames += _message_frames(draw, Opcode.TEXT, message.encode(), pings)
        else:
            frames += _message_frames(draw, Opcode.BINARY, message, pings)
    closing: tuple[int, str] | None = None
    if close if close is not None else draw(st.booleans()):
        code = draw(st.none() | st.sampled_from(VALID_CLOSE_CODES) | st.integers(3000, 4999))
        reason = "" if code is None else draw(_REASONS)
        payload = close_payload(code, reason.encode())
        frames.append(Frame(Opcode.CLOSE, payload, mask=draw(_MASKS)))
        closing = (1005, "") if code is None else (code, reason)
    return WsTraffic(tuple(frames), tuple(messages), tuple(pings), closing)


# --- defects ---------------------------------------------------------------------------------

_WsMutator = Callable[[st.DrawFn, int], list[Frame]]
_WS_MUTATIONS: dict[str, tuple[_WsMutator, int]] = {}

_RESERVED_OPCODES = (0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF)
_CONTROL_OPCODES = (Opcode.PING, Opcode.PONG, Opcode.CLOSE)
_DATA_OPCODES = (Opcode.TEXT, Opcode.BINARY)


def _ws_kind(name: str, close_code: int) -> Callable[[_WsMutator], _WsMutator]:
    def register(mutate: _WsMutator) -> _WsMutator:
        _WS_MUTATIONS[name] = (mutate, close_code)
        return mutate

    return register


def _with_invalid_utf8(draw: st.DrawFn) -> bytes:
    """Valid UTF-8 text (at most 84 bytes) with an invalid sequence inserted between characters."""
    chars = draw(st.text(max_size=20))
    i = draw(st.integers(0, len(chars)))
    return chars[:i].encode() + draw(st.sampled_from(INVALID_UTF8)) + chars[i:].encode()


def _some_frame(
    draw: st.DrawFn,
    *,
    opcode: int | None = None,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    length_form: LengthForm = "minimal",
) -> Frame:
    """A small frame, of a drawn data or control opcode unless one is given."""
    if opcode is None:
        opcode = draw(st.sampled_from((*_DATA_OPCODES, Opcode.PING, Opcode.PONG)))
    payload = b"hello" if opcode == Opcode.TEXT else draw(st.binary(max_size=20))
    mask = draw(_MASKS) if masked else None
    return Frame(opcode, payload, fin=fin, rsv=rsv, mask=mask, length_form=length_form)


@_ws_kind("invalid-utf8-text", 1007)
def _invalid_utf8(draw: st.DrawFn, max_size: int) -> list[Frame]:
    payload = _with_invalid_utf8(draw)
    return _message_frames(draw, Opcode.TEXT, payload, [])


@_ws_kind("bad-close-code", 1002)
def _bad_close_code(draw: st.DrawFn, max_size: int) -> list[Frame]:
    code = draw(st.sampled_from(INVALID_CLOSE_CODES))
    payload = close_payload(code, draw(_REASONS).encode())
    return [Frame(Opcode.CLOSE, payload, mask=draw(_MASKS))]


@_ws_kind("close-reason-invalid-utf8", 1007)
def _close_reason_utf8(draw: st.DrawFn, max_size: int) -> list[Frame]:
    code = draw(st.sampled_from(VALID_CLOSE_CODES))
    reason = _with_invalid_utf8(draw)
    return [Frame(Opcode.CLOSE, close_payload(code, reason), mask=draw(_MASKS))]


@_ws_kind("close-payload-one-byte", 1002)
def _close_one_byte(draw: st.DrawFn, max_size: int) -> list[Frame]:
    return [Frame(Opcode.CLOSE, draw(st.binary(min_size=1, max_size=1)), mask=draw(_MASKS))]


@_ws_kind("unmasked-frame", 1002)
def _unmasked(draw: st.DrawFn, max_size: int) -> list[Frame]:
    return [_some_frame(draw, masked=False)]


@_ws_kind("reserved-bits", 1002)
def _reserved_bits(draw: st.DrawFn, max_size: int) -> list[Frame]:
    return [_some_frame(draw, rsv=draw(st.integers(1, 7)))]


@_ws_kind("reserved-opcode", 1002)
def _reserved_opcode(draw: st.DrawFn, max_size: int) -> list[Frame]:
    return [_some_frame(draw, opcode=draw(st.sampled_from(_RESERVED_OPCODES)))]


@_ws_kind("control-frame-too-long", 1002)
def _long_control(draw: st.DrawFn, max_size: int) -> list[Frame]:
    opcode = draw(st.sampled_from(_CONTROL_OPCODES))
    payload = draw(st.binary(min_size=126, max_size=200))
    if opcode == Opcode.CLOSE:
        payload = close_payload(1000, b"r" * (len(payload) - 2))
    return [Frame(opcode, payload, mask=draw(_MASKS))]


@_ws_kind("fragmented-control-frame", 1002)
def _fragmented_control(draw: st.DrawFn, max_size: int) -> list[Frame]:
    opcode = draw(st.sampled_from(_CONTROL_OPCODES))
    payload = close_payload(1000) if opcode == Opcode.CLOSE else draw(_CONTROL_PAYLOADS)
    return [Frame(opcode, payload, fin=False, mask=draw(_MASKS))]


@_ws_kind("continuation-without-start", 1002)
def _orphan_continuation(draw: st.DrawFn, max_size: int) -> list[Frame]:
    return [_some_frame(draw, opcode=Opcode.CONTINUATION, fin=draw(st.booleans()))]


@_ws_kind("data-frame-in-fragmented-message", 1002)
def _interleaved_data(draw: st.DrawFn, max_size: int) -> list[Frame]:
    first = _some_frame(draw, opcode=draw(st.sampled_from(_DATA_OPCODES)), fin=False)
    between = draw(_controls([]))
    second = _some_frame(draw, opcode=draw(st.sampled_from(_DATA_OPCODES)))
    return [first, *between, second]


@_ws_kind("non-minimal-length", 1002)
def _non_minimal_length(draw: st.DrawFn, max_size: int) -> list[Frame]:
    form: LengthForm = draw(st.sampled_from(["16-bit", "64-bit"]))
    return [_some_frame(draw, length_form=form)]


@_ws_kind("length-msb-set", 1002)
def _length_msb(draw: st.DrawFn, max_size: int) -> list[Frame]:
    declared = 1 << 63 | draw(st.integers(0, 1 << 20))
    opcode = draw(st.sampled_from(_DATA_OPCODES))
    return [Frame(opcode, b"", length_form="64-bit", declared_length=declared, mask=draw(_MASKS))]


@_ws_kind("oversized-message", 1009)
def _oversized(draw: st.DrawFn, max_size: int) -> list[Frame]:
    size = max_size + 1 + draw(st.integers(0, 64))
    opcode = draw(st.sampled_from(_DATA_OPCODES))
    variant = draw(st.sampled_from(["one frame", "fragments", "header only"]))
    if variant == "header only":  # a strict server refuses on the announced length alone
        return [Frame(opcode, b"", declared_length=size, mask=draw(_MASKS))]
    payload = b"a" * size
    if variant == "one frame":
        return [Frame(opcode, payload, mask=draw(_MASKS))]
    half = size // 2
    return [
        Frame(opcode, payload[:half], fin=False, mask=draw(_MASKS)),
        Frame(Opcode.CONTINUATION, payload[half:], mask=draw(_MASKS)),
    ]


#: Every kind of WebSocket defect, with the close code a server must answer it with.
INVALID_WS_KINDS: Mapping[str, int] = MappingProxyType(
    {name: code for name, (_, code) in _WS_MUTATIONS.items()}
)


def invalid_ws_frames(
    *,
    kinds: Sequence[str] | None = None,
    max_message_size: int = Config.ws_max_size,
) -> st.SearchStrategy[RawInvalidWsFrames]:
    """Client traffic that a server must end with a close frame of a given code.

    A short valid prefix (see :func:`ws_client_frames`, without a close) then
    one defect: invalid UTF-8 in a text message (also cut across fragments) or
    in a close reason, close codes that must not be sent, a one-byte close
    payload, an unmasked frame, reserved bits or opcodes, control frames that
    are too long or fragmented, a continuation with no message open, a new
    data frame inside a fragmented message, non-minimal or out-of-range
    lengths, and messages over ``max_message_size`` (1009; one of them only
    announces its length, to catch servers that buffer before checking).

    Args:
        kinds: The kinds to draw from (default: all of :data:`INVALID_WS_KINDS`).
        max_message_size: The server's message limit (``Config.ws_max_size``);
            ``oversized-message`` draws bodies just over it, so keep it small in tests.

    Raises:
        ValueError: An unknown kind.

    Example:
        >>> from hypothesis import given
        >>> @given(invalid_ws_frames(kinds=["reserved-opcode", "unmasked-frame"]))
        ... def test_protocol_errors(traffic):
        ...     assert traffic.expected_close_code == 1002
        >>> test_protocol_errors()
    """
    chosen = list(_WS_MUTATIONS) if kinds is None else list(kinds)
    for name in chosen:
        if name not in _WS_MUTATIONS:
            raise ValueError(f"unknown kind of invalid WebSocket traffic: {name!r}")
    return _invalid_ws_frames(tuple(chosen), max_message_size)


@st.composite
def _invalid_ws_frames(
    draw: st.DrawFn, kinds: tuple[str, ...], max_message_size: int
) -> RawInvalidWsFrames:
    kind = draw(st.sampled_from(kinds))
    mutate, code = _WS_MUTATIONS[kind]
    prefix = draw(_PREFIXES)
    frames = (*prefix.frames, *mutate(draw, max_message_size))
    return RawInvalidWsFrames(
        data=b"".join(frame.data for frame in frames),
        frames=frames,
        kind=kind,
        expected_close_code=code,
        messages_before=prefix.messages,
    )


_PREFIXES = ws_client_frames(max_messages=2, max_message_size=200, close=False)
