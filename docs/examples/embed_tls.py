"""Serve HTTPS from a trio program: trio's own TLS listener, handed to ``serve(listeners=...)``.

trustme makes a throwaway certificate authority so the example runs anywhere; with a
real certificate, call ``context.load_cert_chain("cert.pem", "key.pem")`` instead.
Run it with ``python embed_tls.py`` (``pip install httpx trustme``).
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import trio
import trustme

import trio_asgi

Message = MutableMapping[str, Any]


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": f"Hello over {scope['scheme']}\n".encode()})


async def main() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)

    # Any trio listeners will do: here TCP listeners on a free port, wrapped in TLS.
    tcp_listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    tls_listeners = [
        trio.SSLListener(listener, server_context, https_compatible=True)
        for listener in tcp_listeners
    ]

    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio_asgi.serve, listeners=tls_listeners)
        server = await nursery.start(serve, app, trio_asgi.Config())
        async with httpx.AsyncClient(verify=client_context) as client:
            response = await client.get(f"https://{server.addresses[0]}/")
        print(response.status_code, response.text, end="")
        server.shutdown()


if __name__ == "__main__":
    trio.run(main)
