"""A final response head as HEADERS (and CONTINUATION) bytes, without h2's frame objects.

h2's ``send_headers`` builds a hyperframe ``HeadersFrame`` (three constructors, a
flag set, a set of valid flags), walks the fields twice more and serialises the
object again: about a fifth of the server's CPU per HTTP/2 hello request. What it
changes in h2's state is small and public enough to drive directly: the
connection's and the stream's state machines take the same inputs in the same order
(so every error h2 would raise is raised, before anything is written), the HPACK
encoder codes the fields, and the frames are nine bytes of header each. (h2 also
records a sent head's ``:method`` for a client's response checks; a server's
stream holds None there, and a response has no ``:method``.)

Used only for a final response head on a stream h2 holds; informational heads,
trailers and refusals still go through h2. ``tests/protocol/test_http2_head_frames.py``
holds the bytes and the states after each head to h2's own ``send_headers``.
"""

from __future__ import annotations

from h2.connection import ConnectionInputs, H2Connection
from h2.exceptions import ProtocolError
from h2.stream import StreamInputs

from ._http2_frames import FLAG_END_HEADERS, FLAG_END_STREAM, FrameType

_HEADERS = int(FrameType.HEADERS)
_CONTINUATION = int(FrameType.CONTINUATION)


def response_head_frames(
    conn: H2Connection, stream_id: int, fields: list[tuple[bytes, bytes]], end_stream: bool
) -> bytes:
    """The HEADERS frames of a final response head, h2's states moved as its send_headers
    would: write them after what h2 has queued. For a stream h2 no longer holds, h2's
    own ``send_headers`` answers (it queues the frames or raises) and this returns b"".

    Raises:
        h2.exceptions.ProtocolError: as ``send_headers`` would (nothing was encoded).
    """
    stream = conn.streams.get(stream_id)
    if stream is None:
        conn.send_headers(stream_id, fields, end_stream=end_stream)
        return b""
    conn.state_machine.process_input(ConnectionInputs.SEND_HEADERS)
    stream.state_machine.process_input(StreamInputs.SEND_HEADERS)
    block = conn.encoder.encode(fields)
    if end_stream:
        stream.state_machine.process_input(StreamInputs.SEND_END_STREAM)
    elif stream.state_machine.trailers_sent:
        raise ProtocolError("Trailers must have END_STREAM set.")
    max_size = stream.max_outbound_frame_size or conn.max_outbound_frame_size  # as h2 slices
    return _frames(stream_id, block, max_size, end_stream)


def _frames(stream_id: int, block: bytes, max_size: int, end_stream: bool) -> bytes:
    """``block`` as HEADERS then CONTINUATION frames of at most ``max_size`` bytes each."""
    sid = stream_id.to_bytes(4, "big")
    first_flags = FLAG_END_STREAM if end_stream else 0
    if len(block) <= max_size:
        flags = first_flags | FLAG_END_HEADERS
        return len(block).to_bytes(3, "big") + bytes((_HEADERS, flags)) + sid + block
    out = bytearray()
    for start in range(0, len(block), max_size):
        piece = block[start : start + max_size]
        kind, flags = (_HEADERS, first_flags) if start == 0 else (_CONTINUATION, 0)
        if start + max_size >= len(block):
            flags |= FLAG_END_HEADERS
        out += len(piece).to_bytes(3, "big") + bytes((kind, flags)) + sid + piece
    return bytes(out)
