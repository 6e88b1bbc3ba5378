"""Fixtures for black-box tests of the server over real sockets on 127.0.0.1.

Backends: the real-socket test modules are marked ``pytest.mark.anyio`` and run once
on trio and once on asyncio (``anyio_backend`` below), so these fixtures use anyio's
API only. The in-memory modules (``test_deadlines``, ``test_shutdown``,
``test_lifespan``, ``test_limits``, ``test_backpressure``, ``test_ws_memory``) run on
both too, in virtual time: they use the ``virtual_clock`` fixture, which makes
``anyio_backend`` run trio under ``MockClock(autojump_threshold=0)`` and asyncio in a
:class:`~trio_asgi.testing._virtual_clock.VirtualClockEventLoop`. With
``TRIO_ASGI_TEST_UVLOOP=1`` in the environment (``nox -s tests_uvloop``), the real-socket
tests' asyncio runs use uvloop instead of the standard loop (its event loop policy).

* ``run_server(app, **options)``: an async context manager that starts
  :func:`trio_asgi.serve` on port 0 in a task group, yields the :class:`~trio_asgi.Server`,
  and shuts it down gracefully on exit. Tests get a short graceful-shutdown timeout
  and lifespan ``off`` unless they ask otherwise.
* ``connect(server)``: a :class:`RawClient` on the server's first address (TCP or
  unix), closed when the test ends. It sends raw bytes and parses responses with an
  h11 client, so what is checked is exactly what went over the wire.
* ``server_config(**options)``: the same test defaults as a Config, for tests that
  run ``serve()`` in their own nursery; ``make_request(...)``: raw request bytes;
  ``url(server)``: a base URL for httpx.

Test bodies wrap themselves in ``anyio.fail_after``: a hang fails instead of blocking CI.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
import anyio.abc
import h11
import pytest
from trio.testing import MockClock

from trio_asgi import Config, Server, serve
from trio_asgi.testing._virtual_clock import VirtualClockEventLoop

if os.environ.get("TRIO_ASGI_TEST_UVLOOP") == "1":
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

#: Defaults for test servers: fast shutdown, and no lifespan unless a test asks for it.
TEST_DEFAULTS: dict[str, Any] = {
    "bind": ("127.0.0.1:0",),
    "lifespan": "off",
    "timeout_graceful_shutdown": 2.0,
}


@dataclass
class Response:
    """One response as an h11 client parsed it."""

    status: int
    reason: bytes
    http_version: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    #: 1xx responses that came before this one (``100 Continue``).
    informational: list[h11.InformationalResponse] = field(default_factory=list)

    def header(self, name: bytes) -> bytes | None:
        """The value of the only (or first) header called ``name``; None if absent."""
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key == name.lower()]


class RawClient:
    """A client that writes raw bytes and reads what the server really sent."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.buffer = b""
        #: The connection ended with a reset rather than a FIN.
        self.reset = False

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)

    async def _read_some(self) -> bytes:
        try:
            return await self.stream.receive(65536)
        except anyio.EndOfStream:
            return b""
        except anyio.BrokenResourceError:
            self.reset = True
            return b""

    async def read_response(self, method: bytes = b"GET") -> Response:
        """Read one whole response (after any 1xx); a response to HEAD has no body.

        Bytes after the response stay buffered for the next call.
        """
        conn = h11.Connection(h11.CLIENT)
        # h11 needs to know the request it answers (HEAD has no body); nothing is sent.
        conn.send(h11.Request(method=method, target="/", headers=[("host", "test")]))
        conn.send(h11.EndOfMessage())
        if self.buffer:  # b"" would tell h11 the connection closed
            conn.receive_data(self.buffer)
            self.buffer = b""
        informational: list[h11.InformationalResponse] = []
        response: Response | None = None
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await self._read_some())
            elif isinstance(event, h11.InformationalResponse):
                informational.append(event)
            elif isinstance(event, h11.Response):
                response = Response(
                    status=event.status_code,
                    reason=event.reason,
                    http_version=event.http_version,
                    headers=list(event.headers),
                    informational=informational,
                )
            elif isinstance(event, h11.Data):
                assert response is not None
                response.body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                self.buffer = conn.trailing_data[0]
                return response
            else:  # pragma: no cover - ConnectionClosed before a response
                raise AssertionError(f"unexpected {event!r}")

    async def read_until(self, marker: bytes) -> bytes:
        """Read until ``marker`` arrives; return everything up to and including it."""
        while marker not in self.buffer:
            data = await self._read_some()
            if not data:
                raise AssertionError(f"EOF before {marker!r}; got {self.buffer!r}")
            self.buffer += data
        end = self.buffer.index(marker) + len(marker)
        found, self.buffer = self.buffer[:end], self.buffer[end:]
        return found

    async def read_until_eof(self) -> bytes:
        """Everything until the server closes the connection (a reset counts as closed).

        Then the client closes too, so a server that lingers after an error reply
        (reading what the client might still send) is not kept waiting.
        """
        data, self.buffer = self.buffer, b""
        while chunk := await self._read_some():
            data += chunk
        await self.aclose()
        return data

    async def expect_eof(self) -> None:
        """The server closed the connection and sent nothing more."""
        assert await self.read_until_eof() == b""

    async def aclose(self) -> None:
        await anyio.aclose_forcefully(self.stream)


async def open_client(address: str) -> RawClient:
    """Connect to an address in bind syntax: ``host:port``, ``[v6]:port`` or ``unix:PATH``."""
    if address.startswith("unix:"):
        stream: anyio.abc.ByteStream = await anyio.connect_unix(address[len("unix:") :])
    else:
        host, _, port = address.rpartition(":")
        stream = await anyio.connect_tcp(host.strip("[]"), int(port))
    return RawClient(stream)


def config_for_tests(**options: Any) -> Config:
    """A Config with the test defaults, overridden by ``options``."""
    return Config(**{**TEST_DEFAULTS, **options})


@asynccontextmanager
async def _run_server(
    app: Any, *, sockets: Sequence[socket.socket] | None = None, **options: Any
) -> AsyncIterator[Server]:
    async with anyio.create_task_group() as group:
        config = config_for_tests(**options)
        server: Server = await group.start(partial(serve, app, config, sockets=sockets))
        try:
            yield server
        finally:
            server.shutdown()


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str | tuple[str, dict[str, Any]]:
    """Each real-socket test runs on both backends (the anyio plugin reads this fixture).

    A test that uses the ``virtual_clock`` fixture gets the backend with a virtual clock.
    """
    backend: str = request.param
    if "virtual_clock" in request.fixturenames:
        return virtual_clock_backend(backend)
    return backend


def virtual_clock_backend(backend: str) -> tuple[str, dict[str, Any]]:
    """``backend`` with its options for virtual time that jumps whenever every task waits."""
    if backend == "trio":
        return ("trio", {"clock": MockClock(autojump_threshold=0)})
    return ("asyncio", {"loop_factory": VirtualClockEventLoop})


@pytest.fixture
def virtual_clock() -> None:
    """Run this anyio test in virtual time, on each backend (see ``anyio_backend``).

    Time moves only when every task waits, straight to the next deadline: trio's
    ``MockClock(autojump_threshold=0)``, and its twin on asyncio. Use it as
    ``pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("virtual_clock")]``.
    """


@pytest.fixture
def server_config() -> Callable[..., Config]:
    """``server_config(**options)``: a Config with the test defaults (port 0, no lifespan)."""
    return config_for_tests


@pytest.fixture
def run_server() -> Callable[..., Any]:
    """``async with run_server(app, **options) as server``: serve ``app`` on 127.0.0.1:0."""
    return _run_server


@pytest.fixture
async def connect() -> AsyncIterator[Callable[[Server | str], Awaitable[RawClient]]]:
    """``await connect(server)``: a :class:`RawClient` on its first address (or an address)."""
    clients: list[RawClient] = []

    async def _connect(target: Server | str) -> RawClient:
        address = target if isinstance(target, str) else target.addresses[0]
        client = await open_client(address)
        clients.append(client)
        return client

    yield _connect
    for client in clients:
        await client.aclose()


@pytest.fixture
def respond_once() -> Callable[..., Awaitable[Response]]:
    """``await respond_once(app, request, **options)``: serve ``app`` (with ``options``),
    send the raw ``request`` bytes on one connection, and return the parsed response,
    all within 5 seconds."""

    async def _respond(app: Any, request: bytes, **options: Any) -> Response:
        with anyio.fail_after(5):
            async with _run_server(app, **options) as server:
                client = await open_client(server.addresses[0])
                try:
                    await client.send(request)
                    return await client.read_response()
                finally:
                    await client.aclose()

    return _respond


@pytest.fixture
def leave_mid_response() -> Callable[..., Awaitable[None]]:
    """``await leave_mid_response(app, request, finished)``: the client leaves mid-response.

    Serve ``app``, send ``request``, read the response head, drop the connection, then
    wait for ``finished`` (which the app sets), all within 5 seconds.
    """

    async def _leave(app: Any, request: bytes, finished: anyio.Event) -> None:
        with anyio.fail_after(5):
            async with _run_server(app) as server:
                client = await open_client(server.addresses[0])
                try:
                    await client.send(request)
                    await client.read_until(b"\r\n\r\n")
                finally:
                    await client.aclose()
                await finished.wait()

    return _leave


@pytest.fixture
def url() -> Callable[[Server], str]:
    """``url(server)``: the ``http://host:port`` of a server's first address, for httpx."""
    return lambda server: f"http://{server.addresses[0]}"


def request(
    path: str = "/",
    method: str = "GET",
    *,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    version: str = "1.1",
) -> bytes:
    """Raw request bytes: a Host header, the given headers, Content-Length if there is a body."""
    lines = [f"{method} {path} HTTP/{version}", "Host: test"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@pytest.fixture
def make_request() -> Callable[..., bytes]:
    """``make_request(path, method, headers=..., body=..., version=...)``: raw request bytes."""
    return request


# --- a WebSocket client fixture (tests/server/test_ws_sockets*.py) -----------------------------


@pytest.fixture
async def ws_connect() -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await ws_connect(server, target, **open_websocket_options)``; closed at the end."""
    clients: list[Any] = []

    async def _connect(server: Server, target: str = "/", **options: Any) -> Any:
        host, _, port = server.addresses[0].rpartition(":")
        stream = await anyio.connect_tcp(host, int(port))
        from ws_helpers import open_websocket  # a sibling module, imported where it is used

        try:
            client = await open_websocket(stream, target, **options)
        except BaseException:
            await anyio.aclose_forcefully(stream)
            raise
        clients.append(client)
        return client

    yield _connect
    for client in clients:
        await client.aclose()
