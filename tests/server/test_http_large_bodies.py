"""Large bodies both ways, byte for byte, around the sizes where the server changes how it writes.

A response head with a Content-Length waits to go out in one write with the first
body chunk, up to ``COALESCE_LIMIT``; beyond it, head and body are two writes. On
asyncio, one read of the event loop (up to 256 KiB) reaches the app whole.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from trio_asgi._server._http11_stream import COALESCE_LIMIT

pytestmark = pytest.mark.anyio


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Answer with the request body, or with ``size`` bytes when the target asks for them."""
    if scope["type"] != "http":
        return
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    query = scope["query_string"].decode()
    body = pattern(int(query)) if query else b"".join(chunks)
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def pattern(size: int) -> bytes:
    # Not one repeated byte: a lost, doubled or reordered piece changes the bytes.
    return (bytes(range(251)) * (size // 251 + 1))[:size]


SIZES = [0, 1, COALESCE_LIMIT - 1, COALESCE_LIMIT, COALESCE_LIMIT + 1, 1024 * 1024 + 7]


async def test_response_bodies_around_the_coalescing_limit(
    run_server: Any, connect: Any, make_request: Any
) -> None:
    with anyio.fail_after(10):
        async with run_server(echo) as server:
            client = await connect(server)
            # Pipelined on one connection: each response must end exactly where it says.
            await client.send(b"".join(make_request(f"/?{size}") for size in SIZES))
            for size in SIZES:
                response = await client.read_response()
                assert response.status == 200
                assert response.header(b"content-length") == str(size).encode()
                assert response.body == pattern(size)


async def test_a_large_upload_is_echoed_back_whole_twice_on_one_connection(
    run_server: Any, connect: Any, make_request: Any
) -> None:
    body = pattern(3 * 1024 * 1024 + 3)
    with anyio.fail_after(10):
        async with run_server(echo) as server:
            client = await connect(server)
            for _ in range(2):
                async with anyio.create_task_group() as group:
                    group.start_soon(client.send, make_request("/", "POST", body=body))
                    response = await client.read_response()
                assert response.body == body
