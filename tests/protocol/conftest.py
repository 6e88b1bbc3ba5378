"""Shared pieces for the synchronous tests of the sans-IO HTTP/1.1 core.

The server side is :class:`~trio_asgi._protocol._http11.HTTP11Connection`; the
other side is a real h11 client (:class:`H11Client`), which writes the request
bytes and parses the response bytes back, so what is checked is what a real
client would see. Malformed input is written as raw bytes by the tests.

The helpers are handed out through session-scoped fixtures (they hold no state),
so hypothesis tests can use them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import h11
import pytest

from trio_asgi._protocol._http11 import (
    NEED_DATA,
    PAUSED,
    BadRequest,
    ClientEOF,
    Event,
    HTTP11Connection,
    Limits,
)
from trio_asgi._protocol._response import DefaultHeaders

Header = tuple[bytes, bytes]


@dataclass
class Reply:
    """A response as an h11 client parsed it."""

    status: int
    reason: bytes
    http_version: bytes
    #: Lower-cased names, in order.
    headers: list[Header]
    body: bytes = b""
    trailers: list[Header] = field(default_factory=list)

    def values(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key == name]


class H11Client:
    """A real h11 client: builds request bytes and parses our response bytes."""

    def __init__(self) -> None:
        self.h11 = h11.Connection(h11.CLIENT)

    def request(
        self,
        method: bytes = b"GET",
        target: bytes = b"/",
        headers: Sequence[Header] = (),
        body: bytes | None = None,
        *,
        host: bool = True,
    ) -> bytes:
        """One whole request. A body gets a Content-Length unless the headers say chunked."""
        all_headers = [(b"Host", b"example.com")] if host else []
        all_headers += headers
        names = {name.lower() for name, _ in all_headers}
        if (
            body is not None
            and b"transfer-encoding" not in names
            and b"content-length" not in names
        ):
            all_headers.append((b"Content-Length", str(len(body)).encode()))
        out = self.h11.send(h11.Request(method=method, target=target, headers=all_headers)) or b""
        if body:
            out += self.h11.send(h11.Data(data=body)) or b""
        return out + (self.h11.send(h11.EndOfMessage()) or b"")

    def head_only(self, method: bytes, target: bytes, headers: Sequence[Header]) -> bytes:
        """Just the request head (the body is written by the test)."""
        return (
            self.h11.send(h11.Request(method=method, target=target, headers=list(headers))) or b""
        )

    def interim(self, data: bytes) -> h11.InformationalResponse:
        self.h11.receive_data(data)
        event = self.h11.next_event()
        assert type(event) is h11.InformationalResponse, event
        return event

    def response(self, data: bytes, *, eof: bool = False) -> Reply:
        """Parse one complete response from ``data`` (``eof``: the server closed after it)."""
        self.h11.receive_data(data)
        if eof:
            self.h11.receive_data(b"")
        reply: Reply | None = None
        while True:
            event = self.h11.next_event()
            if type(event) is h11.Response:
                reply = Reply(
                    event.status_code, event.reason, event.http_version, list(event.headers)
                )
            elif type(event) is h11.Data:
                assert reply is not None
                reply.body += event.data
            elif type(event) is h11.EndOfMessage:
                assert reply is not None
                reply.trailers = list(event.headers)
                return reply
            else:
                raise AssertionError(f"incomplete response: {event!r} after {data!r}")

    def next_cycle(self) -> None:
        self.h11.start_next_cycle()


def make_conn(
    limits: Limits | None = None,
    *,
    server_header: bool = False,
    date_header: bool = False,
    extra: tuple[tuple[str, str], ...] = (),
) -> HTTP11Connection:
    defaults = DefaultHeaders(server_header=server_header, date_header=date_header, extra=extra)
    return HTTP11Connection(limits or Limits(), defaults)


def pull(conn: HTTP11Connection) -> list[Event]:
    """Events until the connection needs something from us (data, a response) or is done."""
    events: list[Event] = []
    while True:
        event = conn.next_event()
        events.append(event)
        if event is NEED_DATA or event is PAUSED or type(event) in (BadRequest, ClientEOF):
            return events


def feed(conn: HTTP11Connection, data: bytes) -> list[Event]:
    """Give ``data`` (``b""``: EOF) to the connection and pull the events it makes possible."""
    conn.receive_data(data)
    return pull(conn)


class Helpers:
    """The helpers above as one namespace (test modules cannot import a conftest by name)."""

    Client = H11Client
    conn = staticmethod(make_conn)
    pull = staticmethod(pull)
    feed = staticmethod(feed)


@pytest.fixture(scope="session")
def hp() -> type[Helpers]:
    """Stateless helpers, session-scoped so that hypothesis tests can use them too."""
    return Helpers
