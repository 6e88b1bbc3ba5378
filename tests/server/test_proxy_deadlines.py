"""The PROXY header's deadline, on memory streams under a virtual clock (exact times).

A memory connection has no peer address, so these servers trust everyone (``*``).
"""

from __future__ import annotations

import json

import anyio
import pytest
from memory_helpers import make_config, now, running

from trio_asgi import Config
from trio_asgi._types import Receive, Scope, Send

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("virtual_clock")]

HEADER = b"PROXY TCP4 192.0.2.5 192.0.2.1 4242 80\r\n"
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


async def client_app(scope: Scope, receive: Receive, send: Send) -> None:
    body = json.dumps(scope["client"]).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def proxy_config(**options: object) -> Config:
    return make_config(
        proxy_protocol=True, forwarded_allow_ips="*", timeout_first_byte=3.0, **options
    )


@pytest.mark.parametrize("sent", [b"", b"PROXY TCP4 192.0.2.5", b"\r\n\r\n\x00\r\nQUIT\n\x21"])
async def test_no_whole_header_by_the_first_byte_deadline_closes(sent: bytes) -> None:
    async with running(client_app, proxy_config()) as srv:
        t0 = now()
        client = await srv.connect()
        if sent:
            await anyio.sleep(1.0)
            await client.send(sent)
        # The deadline counts from the connection, not from the header's first byte.
        assert await client.expect_closed() - t0 == pytest.approx(3.0)


async def test_header_in_time_then_the_request() -> None:
    async with running(client_app, proxy_config(timeout_request_head=4.0)) as srv:
        t0 = now()
        client = await srv.connect()
        await anyio.sleep(2.0)
        await client.send(HEADER[:10])
        await anyio.sleep(0.5)
        await client.send(HEADER[10:])
        # No bytes after the header: the request's own first-byte wait starts now.
        await anyio.sleep(2.9)
        await client.send(REQUEST)
        response = await client.response()
        assert response.status == 200
        assert json.loads(response.body) == ["192.0.2.5", 4242]
        assert response.at - t0 == pytest.approx(5.4)
