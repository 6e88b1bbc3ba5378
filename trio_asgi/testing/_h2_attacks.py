"""Hypothesis strategies for malicious HTTP/2 frame sequences, each with the answer owed.

:func:`malicious_h2_frames` draws one attack of a kind in :data:`H2_ATTACK_KINDS`
as an :class:`H2Attack`: the raw bytes to send after the connection preface and
SETTINGS, and the answers a strict server may give (a GOAWAY or an RST_STREAM with
a given error code, per RFC 9113/7541, and the bounds trio-asgi documents for the
floods). Well-formed streams in an attack use paths ``/ok/...``; those with a
malformed head ``/bad/``, and those with a valid head and a malformed body
``/badbody/``, so :func:`~trio_asgi.testing.assert_h2_attack_answered` can check that
no malformed head reached the app and no malformed body reached it as complete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hypothesis import strategies as st

from ._h2_frames import (
    H2FrameType,
    continuation_frame,
    data_frame,
    encode_h2_frame,
    encode_header_block,
    headers_frame,
    ping_frame,
    priority_frame,
    request_fields,
    rst_stream_frame,
    settings_frame,
    window_update_frame,
)
from ._h2_requests import (
    ENHANCE_YOUR_CALM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    PROTOCOL_ERROR,
    STREAM_CLOSED,
    Answer,
    H2Attack,
)


def _ok(stream_id: int) -> list[tuple[bytes, bytes]]:
    return request_fields("GET", f"/ok/{stream_id}")


def _bad(method: str = "GET", path: str = "/bad/") -> list[tuple[bytes, bytes]]:
    return request_fields(method, path)


@st.composite
def _rapid_reset(draw: st.DrawFn) -> bytes:
    count = draw(st.integers(101, 160))
    return b"".join(headers_frame(s, _ok(s)) + rst_stream_frame(s) for s in range(1, 2 * count, 2))


@st.composite
def _continuation_flood(draw: st.DrawFn) -> bytes:
    frames = draw(st.integers(17, 64))
    block = encode_header_block([*_ok(1), (b"x-pad", b"p" * frames)])
    head, rest = block[:1], block[1:]
    pieces = [rest[i : i + 1] for i in range(len(rest))]
    return headers_frame(1, [], block=head, end_headers=False) + b"".join(
        continuation_frame(1, piece) for piece in pieces
    )


@st.composite
def _hpack_bomb(draw: st.DrawFn) -> bytes:
    # One 4 KB entry in the dynamic table, then the one-byte reference to it, repeated.
    size = draw(st.integers(3000, 4000))
    repeats = draw(st.integers(20, 400))
    insert = b"\x40\x01x" + _hpack_length(size) + b"v" * size
    block = encode_header_block(_ok(1)) + insert + b"\xbe" * repeats
    return encode_h2_frame(H2FrameType.HEADERS, 0x5, 1, block[:16384])


def _hpack_length(size: int) -> bytes:
    """An HPACK string length (7-bit prefix, no Huffman)."""
    if size < 127:
        return bytes([size])
    out, size = bytearray([127]), size - 127
    while size >= 128:
        out.append((size & 0x7F) | 0x80)
        size >>= 7
    out.append(size)
    return bytes(out)


def _flood(frame: bytes, low: int, high: int, prefix: bytes = b"") -> st.SearchStrategy[bytes]:
    return st.integers(low, high).map(lambda count: prefix + frame * count)


@st.composite
def _malformed_head(draw: st.DrawFn) -> bytes:
    fields = draw(
        st.sampled_from(
            [
                [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x")],  # no :path
                [*_bad(), (b":foo", b"1")],
                [*_bad(), (b"x-a", b"1"), (b":method", b"GET")],
                [(b":status", b"200"), *_bad()],
                [*_bad(), (b"X-Upper", b"1")],
                [*_bad(), (b"connection", b"keep-alive")],
                [*_bad(), (b"transfer-encoding", b"chunked")],
                [*_bad(), (b"te", b"gzip")],
                [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"")],
            ]
        )
    )
    return headers_frame(1, fields)


@st.composite
def _bad_value(draw: st.DrawFn) -> bytes:
    bad = draw(st.sampled_from([b"\r", b"\n", b"\0", b"\r\nx-smuggled: 1"]))
    prefix, suffix = draw(st.sampled_from([(b"a", b"b"), (b"", b"b"), (b"a", b"")]))
    return headers_frame(1, [*_bad(), (b"x-v", prefix + bad + suffix)])


@st.composite
def _content_length_mismatch(draw: st.DrawFn) -> bytes:
    declared = draw(st.integers(1, 100))
    sent = draw(st.integers(0, 200).filter(lambda n: n != declared))
    head = headers_frame(
        1,
        [*_bad("POST", "/badbody/"), (b"content-length", str(declared).encode())],
        end_stream=False,
    )
    return head + data_frame(1, b"d" * sent, end_stream=True)


_OPEN_1 = headers_frame(1, _ok(1), end_stream=False)
_WINDOW_MAX = 2**31 - 1

#: Each attack kind: (what it does, its strategy of bytes, the answers owed).
H2_ATTACK_KINDS: dict[str, tuple[str, st.SearchStrategy[bytes], frozenset[Answer]]] = {
    "rapid_reset": (
        "streams opened and reset at once, past the reset budget (CVE-2023-44487)",
        _rapid_reset(),
        frozenset({("goaway", ENHANCE_YOUR_CALM)}),
    ),
    "made_you_reset": (
        "malformed requests that each make the server reset a stream, past the reset "
        "budget (CVE-2025-8671)",
        st.integers(101, 160).map(
            lambda n: b"".join(
                headers_frame(s, [*_bad(), (b"x-v", b"a\rb")]) for s in range(1, 2 * n, 2)
            )
        ),
        frozenset({("goaway", ENHANCE_YOUR_CALM)}),
    ),
    "continuation_flood": (
        "a header block in more CONTINUATION frames than the bound",
        _continuation_flood(),
        frozenset({("goaway", ENHANCE_YOUR_CALM)}),
    ),
    "hpack_bomb": (
        "a small block that decodes to a huge header list (CVE-2016-6581)",
        _hpack_bomb(),
        frozenset({("goaway", ENHANCE_YOUR_CALM)}),
    ),
    "settings_flood": (
        "SETTINGS frames past the per-interval budget",
        _flood(settings_frame(), 101, 200),
        frozenset({("goaway", ENHANCE_YOUR_CALM)}),
    ),
    "ping_flood": (
        "PING frames past the per-interval budget",
        _flood(ping_frame(), 101, 200),
        frozenset({("goaway", ENHANCE_YOUR_CALM)}),
    ),
    "priority_flood": (
        "PRIORITY frames past the per-interval budget",
        _flood(priority_frame(3), 1001, 1100),
        frozenset({("goaway", ENHANCE_YOUR_CALM)}),
    ),
    "empty_data_flood": (
        "empty DATA frames on an open stream past the budget",
        _flood(data_frame(1, b""), 101, 200, prefix=_OPEN_1),
        frozenset({("goaway", ENHANCE_YOUR_CALM)}),
    ),
    "window_update_flood": (
        "WINDOW_UPDATE frames past the per-interval budget",
        _flood(window_update_frame(0, 1), 10001, 10100),
        frozenset({("goaway", ENHANCE_YOUR_CALM)}),
    ),
    "connection_window_overflow": (
        "WINDOW_UPDATE taking the connection's send window past 2^31-1",
        st.just(window_update_frame(0, _WINDOW_MAX)),
        frozenset({("goaway", FLOW_CONTROL_ERROR)}),
    ),
    "stream_window_overflow": (
        "WINDOW_UPDATE taking a stream's send window past 2^31-1",
        st.just(_OPEN_1 + window_update_frame(1, _WINDOW_MAX)),
        frozenset({("reset", FLOW_CONTROL_ERROR)}),
    ),
    "stream_id_decrease": (
        "a new stream with a lower id than one already opened",
        st.sampled_from([(5, 3), (7, 1), (3, 1)]).map(
            lambda ids: headers_frame(ids[0], _ok(ids[0])) + headers_frame(ids[1], _ok(ids[1]))
        ),
        frozenset({("goaway", PROTOCOL_ERROR), ("goaway", STREAM_CLOSED)}),
    ),
    "stream_id_reuse": (
        "HEADERS again on a stream whose request already ended",
        st.just(headers_frame(1, _ok(1)) + headers_frame(1, _ok(1))),
        frozenset({("reset", STREAM_CLOSED), ("goaway", STREAM_CLOSED)}),
    ),
    "even_stream_id": (
        "a request on a server-initiated (even) stream id",
        st.sampled_from([2, 4, 100]).map(lambda s: headers_frame(s, _bad())),
        frozenset({("goaway", PROTOCOL_ERROR)}),
    ),
    "malformed_pseudo_headers": (
        "missing, unknown, repeated or misplaced pseudo-headers; upper-case or "
        "connection-specific fields (a malformed request)",
        _malformed_head(),
        frozenset({("reset", PROTOCOL_ERROR)}),
    ),
    "crlf_nul_in_value": (
        "CR, LF or NUL in a field value (CVE-2025-57804)",
        _bad_value(),
        frozenset({("reset", PROTOCOL_ERROR)}),
    ),
    "content_length_mismatch": (
        "DATA that does not add up to content-length",
        _content_length_mismatch(),
        frozenset({("reset", PROTOCOL_ERROR)}),
    ),
    "oversized_frame": (
        "a frame over the advertised SETTINGS_MAX_FRAME_SIZE",
        st.integers(16385, 20000).map(
            lambda n: _OPEN_1 + encode_h2_frame(H2FrameType.DATA, 0, 1, b"d" * n)
        ),
        frozenset({("goaway", FRAME_SIZE_ERROR)}),
    ),
}


def malicious_h2_frames(kinds: Sequence[str] | None = None) -> st.SearchStrategy[H2Attack]:
    """Malicious frame sequences (a strategy of :class:`H2Attack`).

    Args:
        kinds: Draw only these kinds (default: all of :data:`H2_ATTACK_KINDS`).

    Raises:
        ValueError: An unknown kind.

    Example:
        >>> from hypothesis import given
        >>> from trio_asgi.testing.strategies import H2FrameReader
        >>> @given(malicious_h2_frames(["ping_flood", "oversized_frame"]))
        ... def test_attacks_are_whole_frames(attack):
        ...     reader = H2FrameReader()
        ...     assert reader.feed(attack.data) and reader.buffered == 0
        ...     assert attack.answers
        >>> test_attacks_are_whole_frames()
    """
    chosen = list(H2_ATTACK_KINDS) if kinds is None else list(kinds)
    unknown = set(chosen) - set(H2_ATTACK_KINDS)
    if unknown:
        raise ValueError(f"unknown attack kinds: {sorted(unknown)}")
    return st.one_of([_attack(kind) for kind in chosen])


def _attack(kind: str) -> st.SearchStrategy[H2Attack]:
    _, frames, answers = H2_ATTACK_KINDS[kind]
    build: Callable[[bytes], H2Attack] = lambda data: H2Attack(kind, data, answers)  # noqa: E731
    return frames.map(build)
