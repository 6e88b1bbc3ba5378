"""A real nginx in front of trio-asgi, configured by docs/examples/nginx-proxy.conf.

nginx runs in the foreground on loopback ports with everything in ``tmp_path``;
trio-asgi is served in-process by ``serve()``. Clients connect from 127.0.0.2 so the
client's address differs from nginx's (127.0.0.1, the trusted proxy). What the app
sees is checked: the client's address and scheme (``https``/``wss`` when nginx
terminates TLS), nginx's address when nginx is not trusted, and never an address
the client made up.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from frameworks_helpers import WSClient, serve_app
from proxy_helpers import (
    CLIENT_HOST,
    certificates,
    free_port,
    render,
    running,
    who_app,
)
from wsproto import ConnectionType, WSConnection

#: From the PATH, else where the Debian package puts it (not on a user's PATH).
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MAIN_CONF = Path(__file__).with_name("nginx-main.conf")
SPOOFED = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "Forwarded": "for=6.6.6.7"}


@dataclass
class Front:
    http_port: int
    https_port: int
    client_context: Any


@asynccontextmanager
async def behind_nginx(
    tmp_path: Path, example: str = "nginx-proxy.conf", **options: Any
) -> AsyncIterator[Front]:
    """trio-asgi (served with ``options``) behind nginx configured by ``example``."""
    async with (
        serve_app(who_app, lifespan="off", **options) as live,
        nginx_in_front(tmp_path, live.port, example) as front,
    ):
        yield front


@asynccontextmanager
async def nginx_in_front(tmp_path: Path, app_port: int, example: str) -> AsyncIterator[Front]:
    http_port, https_port = free_port(), free_port()
    _, chain, key, context = certificates(tmp_path)
    site = render(
        example,
        {
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{app_port};",
            "listen 80;": f"listen 127.0.0.1:{http_port};",
            "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
            "/etc/ssl/certs/example.pem": str(chain),
            "/etc/ssl/private/example.key": str(key),
        },
    )
    (tmp_path / "site.conf").write_text(site)
    conf = tmp_path / "nginx.conf"
    conf.write_text(MAIN_CONF.read_text().replace("{tmp}", str(tmp_path)))
    argv = [NGINX, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf)]
    with (tmp_path / "nginx.out").open("wb") as log:
        async with running(argv, http_port, log):
            yield Front(http_port, https_port, context)


def client(front: Front) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=CLIENT_HOST, verify=front.client_context)
    return httpx.AsyncClient(transport=transport, timeout=10)


async def get_seen(front: Front, *, tls: bool, headers: dict[str, str] | None = None) -> Any:
    url = (
        f"https://localhost:{front.https_port}/" if tls else f"http://127.0.0.1:{front.http_port}/"
    )
    async with client(front) as http:
        response = await http.get(url, headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()


async def ws_seen(front: Front, *, tls: bool) -> Any:
    port = front.https_port if tls else front.http_port
    stream = await anyio.connect_tcp(
        "127.0.0.1",
        port,
        local_host=CLIENT_HOST,
        ssl_context=front.client_context if tls else None,
        tls_hostname="localhost" if tls else None,
    )
    try:
        ws = WSClient(stream, WSConnection(ConnectionType.CLIENT))
        await ws.handshake(f"localhost:{port}", "/", ())
        return json.loads(await ws.receive())
    finally:
        await anyio.aclose_forcefully(stream)  # nginx may close first: no close_notify


async def test_http_through_nginx_gives_the_client_and_http(tmp_path):
    async with behind_nginx(tmp_path) as front:
        seen = await get_seen(front, tls=False)
    assert seen == {"client": [CLIENT_HOST, 0], "scheme": "http"}


async def test_tls_terminated_at_nginx_gives_https(tmp_path):
    async with behind_nginx(tmp_path) as front:
        seen = await get_seen(front, tls=True)
    assert seen == {"client": [CLIENT_HOST, 0], "scheme": "https"}


@pytest.mark.parametrize(("tls", "scheme"), [(False, "ws"), (True, "wss")])
async def test_websocket_through_nginx(tmp_path, tls, scheme):
    async with behind_nginx(tmp_path) as front:
        seen = await ws_seen(front, tls=tls)
    assert seen == {"client": [CLIENT_HOST, 0], "scheme": scheme}


@pytest.mark.parametrize("tls", [False, True])
async def test_spoofed_headers_never_reach_the_scope(tmp_path, tls):
    async with behind_nginx(tmp_path) as front:
        seen = await get_seen(front, tls=tls, headers=SPOOFED)
    assert seen == {"client": [CLIENT_HOST, 0], "scheme": "https" if tls else "http"}


async def test_untrusted_nginx_changes_nothing(tmp_path):
    async with behind_nginx(tmp_path, forwarded_allow_ips="10.0.0.0/8") as front:
        seen = await get_seen(front, tls=True, headers=SPOOFED)
    assert seen["client"][0] == "127.0.0.1"  # nginx itself
    assert seen["scheme"] == "http"


async def test_access_log_shows_the_client_the_app_sees(tmp_path, caplog):
    with caplog.at_level(logging.INFO, "trio_asgi.access"):
        async with behind_nginx(tmp_path, access_log=True) as front:
            await get_seen(front, tls=False, headers=SPOOFED)
    lines = [r.getMessage() for r in caplog.records if r.name == "trio_asgi.access"]
    assert [line.split(" ", 1)[0] for line in lines] == [f"{CLIENT_HOST}:0"]


# --- RFC 7239 Forwarded, from docs/examples/nginx-forwarded.conf ---------------------------


@pytest.mark.parametrize(("tls", "scheme"), [(False, "http"), (True, "https")])
async def test_forwarded_from_nginx_gives_client_port_and_scheme(tmp_path, tls, scheme):
    async with behind_nginx(tmp_path, "nginx-forwarded.conf") as front:
        seen = await get_seen(front, tls=tls, headers=SPOOFED)
    assert seen["client"][0] == CLIENT_HOST
    assert seen["client"][1] > 0  # Forwarded carries the client's port
    assert seen["scheme"] == scheme


async def test_websocket_through_nginx_with_forwarded(tmp_path):
    async with behind_nginx(tmp_path, "nginx-forwarded.conf") as front:
        seen = await ws_seen(front, tls=True)
    assert seen["client"][0] == CLIENT_HOST
    assert seen["scheme"] == "wss"


def starlette_app() -> Any:
    """A Starlette app that answers with ``request.url`` and redirects to its own page."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, RedirectResponse
    from starlette.routing import Route

    async def page(request: Request) -> JSONResponse:
        client = request.client.host if request.client else None
        return JSONResponse({"url": str(request.url), "client": client})

    async def old(request: Request) -> RedirectResponse:
        return RedirectResponse(request.url_for("page"))

    return Starlette(routes=[Route("/page", page, name="page"), Route("/old", old)])


@pytest.mark.parametrize("example", ["nginx-proxy.conf", "nginx-forwarded.conf"])
@pytest.mark.parametrize("tls", [False, True])
async def test_starlette_behind_nginx_builds_the_url_the_client_used(tmp_path, example, tls):
    # What a Uvicorn user checks first: request.url and redirects keep the client's
    # scheme, host and port (nginx on a port of its own, not 80/443), and request.client
    # is the client, not nginx.
    async with (
        serve_app(starlette_app(), lifespan="off") as live,
        nginx_in_front(tmp_path, live.port, example) as front,
        client(front) as http,
    ):
        base = (
            f"https://localhost:{front.https_port}"
            if tls
            else f"http://127.0.0.1:{front.http_port}"
        )
        page = (await http.get(f"{base}/page?x=1")).json()
        redirect = await http.get(f"{base}/old")
    assert page == {"url": f"{base}/page?x=1", "client": CLIENT_HOST}
    assert redirect.status_code == 307
    assert redirect.headers["location"] == f"{base}/page"
