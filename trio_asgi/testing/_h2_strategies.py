"""Hypothesis strategies for HTTP/2: valid request streams and their interleavings.

:func:`h2_requests` draws one request as :class:`H2Request` (pseudo-headers, header
fields, the body in DATA pieces, trailers). :func:`h2_interleavings` draws several
and an order in which their frames go out (:class:`H2Interleaving`), and
:func:`send_interleaving` sends it with a :class:`~trio_asgi.testing.TestH2Connection`.
The malicious frame sequences are in ``_h2_attacks.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from ._h2_requests import H2Interleaving, H2Request
from ._http_requests import field_values, header_names, origin_targets, tokens

#: Fields HTTP/2 forbids in a request (RFC 9113 section 8.2.2), and those a drawn
#: request leaves to the client (``content-length`` follows the body).
_NOT_DRAWN = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
    | {b"te", b"host", b"content-length", b"cookie"}
)


_names = header_names.map(bytes.lower).filter(lambda name: name not in _NOT_DRAWN)
_fields = st.lists(st.tuples(_names, field_values), max_size=6).map(tuple)
_trailer_fields = st.lists(
    st.tuples(tokens().map(lambda t: b"x-" + t.lower().encode("ascii")), field_values),
    min_size=1,
    max_size=3,
).map(tuple)


@st.composite
def h2_requests(
    draw: st.DrawFn,
    *,
    methods: Sequence[str] = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"),
    paths: st.SearchStrategy[str] | None = None,
    max_body_pieces: int = 4,
    max_piece_size: int = 2048,
    trailers: bool = True,
) -> H2Request:
    """Valid HTTP/2 requests (a strategy of :class:`H2Request`).

    Args:
        methods: The methods to draw from (HEAD and GET get no body).
        paths: The ``:path`` values (default: any origin-form target).
        max_body_pieces: At most this many DATA pieces (some may be empty).
        max_piece_size: At most this many bytes per piece.
        trailers: Whether to draw request trailers sometimes.

    Example:
        >>> from hypothesis import given
        >>> @given(h2_requests(methods=["POST"]))
        ... def test_pieces_make_the_body(request):
        ...     assert request.body == b"".join(request.body_pieces)
        ...     assert all(name == name.lower() for name, _ in request.headers)
        >>> test_pieces_make_the_body()
    """
    method = draw(st.sampled_from(list(methods)))
    path = draw(paths if paths is not None else origin_targets)
    headers = draw(_fields)
    pieces: tuple[bytes, ...] = ()
    if method not in ("GET", "HEAD"):
        pieces = tuple(draw(st.lists(st.binary(max_size=max_piece_size), max_size=max_body_pieces)))
    ending = draw(st.none() | _trailer_fields) if trailers else None
    return H2Request(method, path, headers, pieces, ending or ())


@st.composite
def h2_interleavings(
    draw: st.DrawFn,
    requests: st.SearchStrategy[H2Request] | None = None,
    *,
    min_streams: int = 1,
    max_streams: int = 6,
) -> H2Interleaving:
    """Several requests with their frames interleaved (a strategy of :class:`H2Interleaving`).

    Args:
        requests: The requests (default: :func:`h2_requests`).
        min_streams: At least this many streams.
        max_streams: At most this many (keep it under the server's concurrency limit).

    Example:
        >>> from hypothesis import given
        >>> @given(h2_interleavings(max_streams=3))
        ... def test_each_stream_takes_all_its_steps(interleaving):
        ...     for index, request in enumerate(interleaving.requests):
        ...         assert interleaving.order.count(index) == request.steps
        >>> test_each_stream_takes_all_its_steps()
    """
    drawn = tuple(
        draw(
            st.lists(
                h2_requests() if requests is None else requests,
                min_size=min_streams,
                max_size=max_streams,
            )
        )
    )
    remaining = [request.steps for request in drawn]
    opened = 0
    order: list[int] = []
    while any(remaining):
        # Heads open streams in increasing id order: only the next unopened one may start.
        candidates = [i for i in range(opened) if remaining[i]]
        if opened < len(drawn):
            candidates.append(opened)
        index = draw(st.sampled_from(candidates))
        if index == opened:
            opened += 1
        remaining[index] -= 1
        order.append(index)
    return H2Interleaving(drawn, tuple(order))
