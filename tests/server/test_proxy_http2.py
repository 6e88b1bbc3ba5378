"""Proxy headers on HTTP/2 streams, over real sockets on both loops.

Each HTTP/2 stream is a request of its own: a trusted peer's ``X-Forwarded-*`` or
``Forwarded`` fields set that stream's ``client`` and ``scheme`` and no other's, the
same way and with the same answer as on HTTP/1.1 (``test_proxy.py``); an untrusted
peer's are ignored. Clients: httpx with ``http2=True`` (prior knowledge, many streams
on one connection), curl for the ``Upgrade: h2c`` path. A real HAProxy speaking h2 to
trio-asgi is in ``tests/e2e/test_haproxy_h2.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import httpx
import pytest

from tests.server.h2_ws_client import open_h2_ws
from trio_asgi import Server

pytestmark = pytest.mark.anyio

TIMEOUT = 10
Headers = Sequence[tuple[str, str]]


async def who_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the scope's client, scheme and HTTP version as JSON."""
    seen = {"client": scope["client"], "scheme": scope["scheme"], "v": scope["http_version"]}
    body = json.dumps(seen).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def base(server: Server) -> str:
    return f"http://{server.addresses[0]}"


async def ask(client: httpx.AsyncClient, server: Server, headers: Headers) -> dict[str, Any]:
    response = await client.get(f"{base(server)}/", headers=list(headers))
    assert response.status_code == 200
    seen: dict[str, Any] = json.loads(response.content)
    return seen


def h2_client() -> httpx.AsyncClient:
    """HTTP/2 by prior knowledge: every request a stream on one connection."""
    return httpx.AsyncClient(http1=False, http2=True)


XFF = [("X-Forwarded-For", "6.6.6.6, 203.0.113.7"), ("X-Forwarded-Proto", "https")]


async def test_each_stream_resolves_its_own_proxy_headers(run_server: Callable[..., Any]) -> None:
    asked: list[tuple[Headers, str]] = []
    for n in range(1, 9):  # streams with and without headers, in flight together
        if n % 2:
            asked.append(
                (
                    [("X-Forwarded-For", f"203.0.113.{n}"), ("X-Forwarded-Proto", "https")],
                    f"203.0.113.{n}",
                )
            )
        else:
            asked.append(([], "127.0.0.1"))
    answers: dict[int, dict[str, Any]] = {}
    with anyio.fail_after(TIMEOUT):
        async with run_server(who_app) as server, h2_client() as client:

            async def one(index: int, headers: Headers) -> None:
                answers[index] = await ask(client, server, headers)

            async with anyio.create_task_group() as group:
                for index, (headers, _) in enumerate(asked):
                    group.start_soon(one, index, headers)
    for index, (headers, client_host) in enumerate(asked):
        seen = answers[index]
        assert seen["v"] == "2"
        assert seen["client"][0] == client_host
        if headers:
            assert seen == {"client": [client_host, 0], "scheme": "https", "v": "2"}
        else:  # the connection's own peer, its real port
            assert seen["client"][1] != 0
            assert seen["scheme"] == "http"


@pytest.mark.parametrize(
    "options", [{"forwarded_allow_ips": "10.0.0.0/8"}, {"proxy_headers": False}]
)
async def test_untrusted_peer_or_switched_off_changes_nothing(
    run_server: Callable[..., Any], options: dict[str, Any]
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(who_app, **options) as server, h2_client() as client:
            seen = await ask(client, server, XFF)
    assert seen["v"] == "2"
    assert seen["client"][0] == "127.0.0.1"
    assert seen["client"][1] != 0
    assert seen["scheme"] == "http"


#: Conflicting, repeated and malformed fields, each with the answer HTTP/1.1 gives.
CASES: list[tuple[Headers, Any, str]] = [
    (XFF, ["203.0.113.7", 0], "https"),
    # Forwarded wins over X-Forwarded-* from a trusted peer.
    (
        [("Forwarded", 'for="[2001:db8::1]:4711";proto=https'), *XFF],
        ["2001:db8::1", 4711],
        "https",
    ),
    # Two X-Forwarded-For fields are one list, read from the right.
    (
        [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.9")],
        ["203.0.113.9", 0],
        "http",
    ),
    # A trusted hop is skipped; the proto list lines up with the addresses.
    (
        [("X-Forwarded-For", "198.51.100.1, 127.0.0.1"), ("X-Forwarded-Proto", "https, http")],
        ["198.51.100.1", 0],
        "https",
    ),
    # Malformed values change nothing.
    (
        [("X-Forwarded-For", "[::1"), ("X-Forwarded-Proto", "nope"), ("Forwarded", 'for="')],
        None,
        "http",
    ),
]


@pytest.mark.parametrize(("headers", "client", "scheme"), CASES)
async def test_same_answer_as_http11(
    run_server: Callable[..., Any], headers: Headers, client: Any, scheme: str
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(who_app) as server:
            async with h2_client() as h2:
                over_h2 = await ask(h2, server, headers)
            async with httpx.AsyncClient() as h1:
                over_h1 = await ask(h1, server, headers)
    assert (over_h2["v"], over_h1["v"]) == ("2", "1.1")
    assert over_h2["scheme"] == over_h1["scheme"] == scheme
    if client is None:  # the connection's own peer (each its own port)
        assert over_h2["client"][0] == over_h1["client"][0] == "127.0.0.1"
    else:
        assert over_h2["client"] == over_h1["client"] == client


async def test_the_h2c_upgraded_request_and_the_next_stream(
    run_server: Callable[..., Any],
) -> None:
    # curl sends its first request with Upgrade: h2c (answered on stream 1), and its
    # second, without proxy headers, on stream 3 of the same connection.
    first = ["--http2", "-H", "X-Forwarded-For: 203.0.113.5", "-H", "X-Forwarded-Proto: https"]
    with anyio.fail_after(TIMEOUT):
        async with run_server(who_app) as server:
            second_args = ["--http2", f"{base(server)}/b"]
            done = await anyio.run_process(
                ["curl", "-sS", "-v", *first, f"{base(server)}/a", "--next", *second_args]
            )
    assert b"Re-using existing connection" in done.stderr, done.stderr  # one connection
    upgraded, _, second = done.stdout.partition(b"}")
    assert json.loads(upgraded + b"}") == {
        "client": ["203.0.113.5", 0],
        "scheme": "https",  # and the upgrade still happened: this hop is cleartext
        "v": "2",
    }
    seen = json.loads(second)
    assert (seen["client"][0], seen["scheme"], seen["v"]) == ("127.0.0.1", "http", "2")


async def who_ws_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A WebSocket that tells its client, scheme and HTTP version, then closes."""
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    seen = {"client": scope["client"], "scheme": scope["scheme"], "v": scope["http_version"]}
    await send({"type": "websocket.send", "text": json.dumps(seen)})
    await send({"type": "websocket.close", "code": 1000})


async def test_a_websocket_over_http2_resolves_its_proxy_headers(
    run_server: Callable[..., Any],
) -> None:
    """RFC 8441 streams take the same per-stream resolution as requests."""
    forwarded = [(b"x-forwarded-for", b"203.0.113.9"), (b"x-forwarded-proto", b"https")]
    with anyio.fail_after(TIMEOUT):
        async with run_server(who_ws_app) as server:
            client = await open_h2_ws(server)
            plain = client.streams[await client.open()]
            proxied = client.streams[await client.open(headers=forwarded)]
            await client.until(lambda: bool(plain.received and proxied.received))
            await client.stream.aclose()
    seen_plain, seen_proxied = json.loads(plain.received[0]), json.loads(proxied.received[0])
    assert seen_plain["client"][0] == "127.0.0.1"
    assert seen_plain["scheme"] == "ws"
    assert seen_proxied["client"][0] == "203.0.113.9"
    assert seen_proxied["scheme"] == "wss"
    assert seen_proxied["v"] == seen_plain["v"] == "2"
