"""Proxy headers and the PROXY protocol through the server, over real sockets.

The parsers are tested synchronously in ``tests/protocol/test_forwarded.py`` and
``test_proxy_protocol.py``; the PROXY header's deadline in virtual time in
``test_proxy_deadlines.py``; a real nginx and HAProxy in ``tests/e2e``. Here: what the
connection does with them (scope, access log, keep-alive, closing).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import tempfile
from typing import Any

import anyio
import pytest
from ws_helpers import upgrade_request

pytestmark = pytest.mark.anyio

TIMEOUT = 5
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


async def who_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the scope's client and scheme as JSON (closes WebSockets with them)."""
    seen = {"client": scope["client"], "scheme": scope["scheme"]}
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps(seen)})
        await send({"type": "websocket.close"})
        return
    body = json.dumps(seen).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def ask(client: Any, make_request: Any, headers: Any = ()) -> dict[str, Any]:
    await client.send(make_request("/", headers=headers))
    response = await client.read_response()
    assert response.status == 200
    seen: dict[str, Any] = json.loads(response.body)
    return seen


XFF = [("X-Forwarded-For", "6.6.6.6, 203.0.113.7"), ("X-Forwarded-Proto", "https")]


async def test_proxy_headers_from_loopback_by_default(run_server, connect, make_request, caplog):
    with anyio.fail_after(TIMEOUT), caplog.at_level(logging.INFO, "trio_asgi.access"):
        async with run_server(who_app, access_log=True) as server:
            client = await connect(server)
            seen = await ask(client, make_request, XFF)
            assert seen == {"client": ["203.0.113.7", 0], "scheme": "https"}
            # The next request on the connection, without headers: the real peer again.
            seen = await ask(client, make_request)
            assert seen["client"][0] == "127.0.0.1"
            assert seen["client"][1] != 0
            assert seen["scheme"] == "http"
    access = [r.getMessage() for r in caplog.records if r.name == "trio_asgi.access"]
    assert access[0].startswith("203.0.113.7:0 - ")
    assert access[1].startswith("127.0.0.1:")
    assert not any("6.6.6.6" in line for line in access)


@pytest.mark.parametrize(
    "options", [{"forwarded_allow_ips": "10.0.0.0/8"}, {"proxy_headers": False}]
)
async def test_untrusted_peer_or_switched_off_changes_nothing(
    run_server, connect, make_request, options
):
    with anyio.fail_after(TIMEOUT):
        async with run_server(who_app, **options) as server:
            seen = await ask(await connect(server), make_request, XFF)
    assert seen["client"][0] == "127.0.0.1"
    assert seen["scheme"] == "http"


async def test_malformed_proxy_headers_are_ignored_never_a_500(run_server, connect, make_request):
    bad = [("X-Forwarded-For", "[::1"), ("X-Forwarded-Proto", "nope"), ("Forwarded", 'for="')]
    with anyio.fail_after(TIMEOUT):
        async with run_server(who_app) as server:
            seen = await ask(await connect(server), make_request, bad)
    assert seen["client"][0] == "127.0.0.1"
    assert seen["scheme"] == "http"


async def test_websocket_scheme_from_x_forwarded_proto(run_server, connect):
    request = upgrade_request(
        extra=[("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "wss")]
    )
    with anyio.fail_after(TIMEOUT):
        async with run_server(who_app) as server:
            client = await connect(server)
            await client.send(request)
            await client.read_until(b"\r\n\r\n")
            frame = await client.read_until(b"}")
    assert frame.endswith(b'{"client": ["203.0.113.9", 0], "scheme": "wss"}')


async def test_unix_socket_peer_is_trusted_only_with_unix(run_server, connect, make_request):
    directory = tempfile.mkdtemp(prefix="ta-proxy-", dir="/tmp")
    try:
        path = os.path.join(directory, "s")
        for allow, expected in (("127.0.0.1", None), ("unix:", ["203.0.113.7", 0])):
            with anyio.fail_after(TIMEOUT):
                async with run_server(
                    who_app, bind=(f"unix:{path}",), forwarded_allow_ips=allow
                ) as server:
                    seen = await ask(await connect(server), make_request, XFF)
            assert seen["client"] == expected
    finally:
        shutil.rmtree(directory)


# --- the PROXY protocol ---------------------------------------------------------------------


def v2_header(src: str, sport: int, *, tls: bool = False) -> bytes:
    addresses = (
        bytes(map(int, src.split("."))) + bytes([127, 0, 0, 1]) + struct.pack("!HH", sport, 80)
    )
    tlvs = b""
    if tls:
        ssl = b"\x01\x00\x00\x00\x00"
        tlvs = b"\x20" + struct.pack("!H", len(ssl)) + ssl
    body = addresses + tlvs
    return V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", len(body)) + body


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            b"PROXY TCP4 192.0.2.5 127.0.0.1 4242 80\r\n",
            {"client": ["192.0.2.5", 4242], "scheme": "http"},
        ),
        (v2_header("192.0.2.6", 4343), {"client": ["192.0.2.6", 4343], "scheme": "http"}),
        (
            v2_header("192.0.2.7", 4444, tls=True),
            {"client": ["192.0.2.7", 4444], "scheme": "https"},
        ),
    ],
)
async def test_proxy_protocol_sets_client_and_scheme(
    run_server, connect, make_request, caplog, header, expected
):
    with anyio.fail_after(TIMEOUT), caplog.at_level(logging.INFO, "trio_asgi.access"):
        async with run_server(who_app, proxy_protocol=True, access_log=True) as server:
            client = await connect(server)
            # The header and two pipelined requests in one write: the leftover is parsed.
            await client.send(header + make_request("/") + make_request("/"))
            first = json.loads((await client.read_response()).body)
            second = json.loads((await client.read_response()).body)
    assert first == second == expected
    host, port = expected["client"]
    access = [r.getMessage() for r in caplog.records if r.name == "trio_asgi.access"]
    assert [line.split(" ", 1)[0] for line in access] == [f"{host}:{port}"] * 2


async def test_proxy_protocol_header_in_pieces(run_server, connect, make_request):
    header = b"PROXY TCP4 192.0.2.5 127.0.0.1 4242 80\r\n"
    with anyio.fail_after(TIMEOUT):
        async with run_server(who_app, proxy_protocol=True) as server:
            client = await connect(server)
            for index in range(len(header)):
                await client.send(header[index : index + 1])
            seen = await ask(client, make_request)
    assert seen["client"] == ["192.0.2.5", 4242]


async def test_local_command_keeps_the_real_peer(run_server, connect, make_request):
    local = V2_SIGNATURE + b"\x20\x00\x00\x00"
    with anyio.fail_after(TIMEOUT):
        async with run_server(who_app, proxy_protocol=True) as server:
            client = await connect(server)
            await client.send(local)
            seen = await ask(client, make_request)
    assert seen["client"][0] == "127.0.0.1"


@pytest.mark.parametrize(
    ("data", "allow", "message"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "127.0.0.1", "did not start with a PROXY header"),
        (b"PROXY TCP4 192.0.2.5 nonsense\r\nGET / HTTP/1.1\r\n\r\n", "127.0.0.1", "malformed"),
        (b"PROXY TCP4 192.0.2.5 127.0.0.1 4242 80\r\n", "10.0.0.0/8", "not in forwarded_allow_ips"),
        (v2_header("192.0.2.5", 1), "10.0.0.0/8", "not in forwarded_allow_ips"),
    ],
)
async def test_missing_malformed_or_untrusted_header_closes(
    run_server, connect, caplog, data, allow, message
):
    with anyio.fail_after(TIMEOUT), caplog.at_level(logging.DEBUG, "trio_asgi"):
        async with run_server(who_app, proxy_protocol=True, forwarded_allow_ips=allow) as server:
            client = await connect(server)
            await client.send(data)
            await client.expect_eof()
    lines = [r for r in caplog.records if message in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_untrusted_peer_without_header_is_served_directly(run_server, connect, make_request):
    with anyio.fail_after(TIMEOUT):
        async with run_server(
            who_app, proxy_protocol=True, forwarded_allow_ips="10.0.0.0/8"
        ) as server:
            seen = await ask(await connect(server), make_request, XFF)
    assert seen["client"][0] == "127.0.0.1"
    assert seen["scheme"] == "http"
