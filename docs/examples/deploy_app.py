"""An app that shows what it is told about the request: path, root_path, client, server.

Serve it behind a proxy that strips ``/api`` with
``python -m trio_asgi deploy_app:app --root-path /api``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    # With --root-path /api, a request for /hello (the proxy already removed the
    # prefix) arrives as path "/api/hello" with root_path "/api": the app can build
    # links that go through the proxy, and routers mounted under root_path still match.
    body = f"path={scope['path']} root_path={scope['root_path']}\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
