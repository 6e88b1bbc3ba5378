"""What the test client reads back: one HTTP/1.1 response, parsed by an ``h11`` client."""

from __future__ import annotations

from dataclasses import dataclass, field

import h11


@dataclass
class TestResponse:
    """One response, as the client read it.

    Attributes:
        status: The status code.
        reason: The reason phrase.
        headers: The header fields, names lower-cased, in order.
        body: The body, de-chunked (empty for HEAD, 1xx, 204 and 304).
        http_version: ``"1.1"`` or ``"1.0"``.
        closes_connection: The server said it closes the connection after this
            response (``Connection: close``, an HTTP/1.0 answer, or a body that ends
            at the close).
        informational: ``(status, headers)`` of each ``1xx`` response before it.
        trailers: The trailer fields of a chunked body.
    """

    __test__ = False  # not a pytest test class, despite the name

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    http_version: str
    closes_connection: bool
    informational: list[tuple[int, list[tuple[bytes, bytes]]]] = field(default_factory=list)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def header(self, name: bytes | str) -> bytes | None:
        """The value of header ``name`` (any case), or ``None``.

        Raises:
            AssertionError: The header appears more than once.
        """
        return only_header(self.headers, name)


def only_header(headers: list[tuple[bytes, bytes]], name: bytes | str) -> bytes | None:
    """The value of header ``name`` (any case) in ``headers``, or ``None``.

    Raises:
        AssertionError: The header appears more than once.
    """
    key = (name.encode("ascii") if isinstance(name, str) else name).lower()
    values = [value for n, value in headers if n == key]
    assert len(values) <= 1, f"{key!r} appears {len(values)} times: {values!r}"
    return values[0] if values else None


def response_parser(method: str) -> h11.Connection:
    """A fresh ``h11`` client that reads the response to a request with ``method``.

    The parser only needs the method (HEAD responses have no body); it never sends.
    """
    parser = h11.Connection(h11.CLIENT)
    parser.send(h11.Request(method=method, target="/", headers=[(b"host", b"x")]))
    parser.send(h11.EndOfMessage())
    return parser
