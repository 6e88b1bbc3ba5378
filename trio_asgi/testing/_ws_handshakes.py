"""Route-aware WebSocket handshakes: the target, query, header fields and subprotocols an app reads.

:func:`websocket_handshakes` is :func:`~trio_asgi.testing.strategies.http_requests` for
WebSockets: it draws the parts a test names (each a value or a strategy) with the
same meaning-preserving variations of the target (percent-encoding hex case, query
order) and of the header names (letter case), and :meth:`WebSocketHandshake.open`
performs the handshake on a :class:`~trio_asgi.testing.TestConnection`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import strategies as st

from ._connection import TestConnection
from ._http_routes import Choices, NamedValues, draw_header_values, draw_path, draw_query
from ._repr import CompactRepr
from ._ws_client import TestWebSocket

_CASE_FLIPS = st.integers(min_value=0)


@dataclass(frozen=True, repr=False)
class WebSocketHandshake(CompactRepr):
    """The parts of one drawn WebSocket handshake request.

    Attributes:
        target: The request target, percent-encoded.
        headers: Extra header fields, names in their drawn case.
        subprotocols: The subprotocols offered, in order.
    """

    target: str
    headers: tuple[tuple[bytes, bytes], ...]
    subprotocols: tuple[str, ...]

    async def open(self, client: TestConnection) -> TestWebSocket:
        """Send this handshake on ``client`` and wait for the server's answer."""
        return await client.websocket(
            self.target, subprotocols=self.subprotocols, headers=self.headers
        )


@st.composite
def websocket_handshakes(
    draw: st.DrawFn,
    *,
    paths: Choices = ("/",),
    query: NamedValues | st.SearchStrategy[str] | None = None,
    headers: NamedValues | None = None,
    subprotocols: Sequence[str] = (),
) -> WebSocketHandshake:
    """WebSocket handshakes on the routes and with the parameters a test names.

    Args:
        paths: Paths to draw from, not percent-encoded (a sequence or a strategy).
        query: Parameter names to values or strategies (a drawn ``None`` leaves one
            out), or a strategy of encoded query strings.
        headers: Field names to values or strategies (``None`` leaves one out).
        subprotocols: Subprotocols to offer: a drawn subset, in a drawn order.

    Example:
        >>> from hypothesis import given, strategies as st
        >>> @given(websocket_handshakes(paths=["/chat"], query={"room": st.integers(1, 3)}))
        ... def test_targets(handshake):
        ...     assert handshake.target.startswith("/chat?room=")
        >>> test_targets()
    """
    target = draw_path(draw, paths)
    drawn_query = None if query is None else draw_query(draw, query)
    if drawn_query:
        target += "?" + drawn_query
    fields = tuple(
        (_drawn_case(draw(_CASE_FLIPS), name), value)
        for name, value in draw_header_values(draw, headers or {})
    )
    offered = draw(st.permutations(list(subprotocols)))
    kept = draw(st.integers(0, len(offered)))
    return WebSocketHandshake(target, fields, tuple(offered[:kept]))


def _drawn_case(flips: int, name: bytes) -> bytes:
    return bytes(c - 32 if flips >> i & 1 and 97 <= c <= 122 else c for i, c in enumerate(name))
