"""What the HTTP/2 strategies draw, as plain data: requests, interleavings, attacks.

Hypothesis-free, so the checks in :mod:`trio_asgi.testing` can name these types
without importing hypothesis; the strategies are in ``_h2_strategies.py`` and
``_h2_attacks.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._h2_client import TestH2Connection
from ._h2_responses import TestH2Response


@dataclass(frozen=True)
class H2Request:
    """One HTTP/2 request as the client sends it.

    Attributes:
        method: The ``:method``.
        path: The ``:path`` (origin form, with any query).
        headers: The header fields after the pseudo-headers (lower-case names).
        body_pieces: The body, one DATA frame (or more, under flow control) per piece.
        trailers: Trailer fields ending the stream (empty: the last DATA ends it).
    """

    method: str
    path: str
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body_pieces: tuple[bytes, ...] = ()
    trailers: tuple[tuple[bytes, bytes], ...] = ()

    @property
    def body(self) -> bytes:
        """The whole body."""
        return b"".join(self.body_pieces)

    @property
    def steps(self) -> int:
        """How many writes it takes: the head, each piece, the trailers."""
        return 1 + len(self.body_pieces) + (1 if self.trailers else 0)


@dataclass(frozen=True)
class H2Interleaving:
    """Several requests on one connection, and the order their frames go out.

    Attributes:
        requests: The requests, in the order their streams open.
        order: Which request takes its next step, one entry per step; each request's
            own steps stay in order (head, pieces, trailers) and the heads go out
            in stream order, as HTTP/2 requires.
    """

    requests: tuple[H2Request, ...]
    order: tuple[int, ...] = field(default=())


# Error codes (RFC 9113 section 7).
PROTOCOL_ERROR = 0x1
FLOW_CONTROL_ERROR = 0x3
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
ENHANCE_YOUR_CALM = 0xB

#: One acceptable answer: ``("goaway", code)`` or ``("reset", code)``.
Answer = tuple[str, int]


@dataclass(frozen=True)
class H2Attack:
    """A malicious frame sequence and what a strict server answers.

    Attributes:
        kind: The attack, a key of :data:`H2_ATTACK_KINDS`.
        data: The frames, to send after the preface and SETTINGS exchange.
        answers: Each acceptable answer: ``("goaway", code)`` (the connection
            ends with that error code) or ``("reset", code)`` (a stream is reset
            with it and the connection lives on).
    """

    kind: str
    data: bytes
    answers: frozenset[Answer]


async def send_interleaving(
    client: TestH2Connection, interleaving: H2Interleaving
) -> list[TestH2Response]:
    """Send the requests' frames in the drawn order, then read every response.

    Returns:
        One response per request, in request order.
    """
    stream_ids: list[int] = []
    progress = [0] * len(interleaving.requests)
    for index in interleaving.order:
        request = interleaving.requests[index]
        step = progress[index]
        progress[index] += 1
        last = progress[index] == request.steps
        if step == 0:
            stream_ids.append(
                await client.start_request(
                    request.method, request.path, headers=request.headers, end_stream=last
                )
            )
        elif step <= len(request.body_pieces):
            piece = request.body_pieces[step - 1]
            await client.send_body(stream_ids[index], piece, end_stream=last)
        else:
            await client.send_trailers(stream_ids[index], request.trailers)
    return [await client.read_response(stream_id) for stream_id in stream_ids]
