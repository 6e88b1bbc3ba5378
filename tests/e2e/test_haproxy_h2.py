"""A real HAProxy in HTTP mode speaking HTTP/2 to trio-asgi (``server ... proto h2``).

The config is docs/examples/haproxy-h2-backend.cfg with its ports and certificate
replaced. Clients reach HAProxy from 127.0.0.2 over HTTP/1.1 (plain) and HTTP/2 (TLS,
ALPN), sending a forged ``X-Forwarded-For`` and ``Forwarded`` of their own; HAProxy
appends their address, sets ``X-Forwarded-Proto`` and drops ``Forwarded``, and sends
each request to trio-asgi as a stream on its HTTP/2 connections. The app must see
HTTP/2, the client's address (not the forged one) and the client's scheme.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from frameworks_helpers import serve_app
from proxy_helpers import CLIENT_HOST, certificates, free_port, render, running
from test_haproxy import HAPROXY

FORGED = [
    ("X-Forwarded-For", "6.6.6.6"),
    ("X-Forwarded-Proto", "https"),
    ("Forwarded", "for=6.6.6.7;proto=https"),
]


async def version_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the scope's client, scheme and HTTP version as JSON."""
    if scope["type"] != "http":
        return
    seen = {"client": scope["client"], "scheme": scope["scheme"], "v": scope["http_version"]}
    body = json.dumps(seen).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def behind_haproxy_h2(tmp_path: Path) -> AsyncIterator[tuple[int, int, Any]]:
    plain_port, tls_port = free_port(), free_port()
    _, _, _, context = certificates(tmp_path)
    async with serve_app(version_app, lifespan="off") as live:
        config = render(
            "haproxy-h2-backend.cfg",
            {
                "bind :80": f"bind 127.0.0.1:{plain_port}",
                "bind :443 ssl crt /etc/haproxy/example.pem": (
                    f"bind 127.0.0.1:{tls_port} ssl crt {tmp_path / 'combined.pem'}"
                ),
                "127.0.0.1:8000 proto h2": f"127.0.0.1:{live.port} proto h2",
            },
        )
        (tmp_path / "haproxy.cfg").write_text(config)
        with (tmp_path / "haproxy.out").open("wb") as log:
            async with running(
                [HAPROXY, "-db", "-f", str(tmp_path / "haproxy.cfg")], plain_port, log
            ):
                yield plain_port, tls_port, context


async def ask_many(url: str, *, http2: bool, verify: Any = True) -> list[dict[str, Any]]:
    transport = httpx.AsyncHTTPTransport(local_address=CLIENT_HOST, http2=http2, verify=verify)
    async with httpx.AsyncClient(transport=transport, timeout=10) as client:
        answers = []
        for _ in range(3):
            response = await client.get(url, headers=FORGED)
            assert response.status_code == 200
            assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
            answers.append(json.loads(response.content))
    return answers


async def test_http11_clients_through_haproxy_h2(tmp_path):
    async with behind_haproxy_h2(tmp_path) as (plain, _, _):
        answers = await ask_many(f"http://127.0.0.1:{plain}/", http2=False)
    assert answers == [{"client": [CLIENT_HOST, 0], "scheme": "http", "v": "2"}] * 3


async def test_http2_tls_clients_through_haproxy_h2(tmp_path):
    async with behind_haproxy_h2(tmp_path) as (_, tls, context):
        answers = await ask_many(f"https://localhost:{tls}/", http2=True, verify=context)
    assert answers == [{"client": [CLIENT_HOST, 0], "scheme": "https", "v": "2"}] * 3
