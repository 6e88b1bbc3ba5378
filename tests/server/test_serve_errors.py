"""How serve() reports failures (both backends), and what it reports over trio TLS listeners."""

from __future__ import annotations

import functools
import socket
import ssl
from typing import Any

import anyio
import httpx
import pytest
import trio
import trustme

import trio_asgi


async def never_called(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
    raise AssertionError("no request should reach the app")


@pytest.mark.anyio
async def test_bind_failure_is_a_plain_oserror_naming_the_address() -> None:
    # Regression: the OSError came out of serve() wrapped in the task group's
    # ExceptionGroup, unlike LifespanFailure, and did not say which address.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = trio_asgi.Config(bind=(f"127.0.0.1:{port}",), lifespan="off")
        with anyio.fail_after(5), pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            await trio_asgi.serve(never_called, config)


async def test_tls_listener_gives_https_scope_and_real_addresses() -> None:
    # Regression: over trio.SSLListener the scope said "http", client and server were
    # None, and server.addresses held the listener's repr.
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.update(scheme=scope["scheme"], client=scope["client"], server=scope["server"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    tcp = await trio.open_tcp_listeners(0, host="127.0.0.1")
    tls = [trio.SSLListener(listener, server_context, https_compatible=True) for listener in tcp]
    config = trio_asgi.Config(lifespan="off", access_log=False)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(trio_asgi.serve, listeners=tls), app, config
            )
            port = tcp[0].socket.getsockname()[1]
            assert server.addresses == (f"127.0.0.1:{port}",)
            async with httpx.AsyncClient(verify=client_context) as client:
                response = await client.get(f"https://127.0.0.1:{port}/")
            server.shutdown()
    assert response.status_code == 204
    assert seen["scheme"] == "https"
    assert seen["server"] == ("127.0.0.1", port)
    assert seen["client"][0] == "127.0.0.1"
