"""HTTP/2 against the command-line clients users test with: curl, nghttp, h2load.

Each runs as a real process against a real server on both loops. ``h2load``
drives 4 connections with 16 concurrent streams each and must see no error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from trio_asgi import Server

pytestmark = pytest.mark.anyio

TIMEOUT = 60


async def hello_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-h", b"1")]})
    await send({"type": "http.response.body", "body": f"hello {scope['http_version']}".encode()})


def base(server: Server) -> str:
    return f"http://{server.addresses[0]}"


async def test_curl_prior_knowledge(run_server: Callable[..., Any]) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(hello_app) as server:
            done = await anyio.run_process(
                ["curl", "-sS", "-i", "--http2-prior-knowledge", f"{base(server)}/"]
            )
    out = done.stdout
    assert out.startswith(b"HTTP/2 200"), out
    assert out.endswith(b"hello 2")
    assert b"x-h: 1" in out


async def test_nghttp_with_a_body(run_server: Callable[..., Any]) -> None:
    async def echo(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})

    with anyio.fail_after(TIMEOUT):
        async with run_server(echo) as server:
            done = await anyio.run_process(
                ["nghttp", "-d", "-", f"{base(server)}/"], input=b"z" * 300_000
            )
    assert done.stdout == b"300000"


async def test_h2load_sees_no_error(run_server: Callable[..., Any]) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(hello_app) as server:
            done = await anyio.run_process(
                ["h2load", "-n", "2000", "-c", "4", "-m", "16", f"{base(server)}/"]
            )
    out = done.stdout.decode()
    match = re.search(
        r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
        r"(\d+) failed, (\d+) errored",
        out,
    )
    assert match is not None, out
    assert match.groups() == ("2000", "2000", "2000", "0", "0"), out
    assert "status codes: 2000 2xx" in out, out


async def test_curl_upgrades_with_h2c(run_server: Callable[..., Any]) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(hello_app) as server:
            done = await anyio.run_process(["curl", "-sS", "-i", "--http2", f"{base(server)}/"])
    out = done.stdout
    assert out.startswith(b"HTTP/1.1 101 Switching Protocols"), out
    assert b"HTTP/2 200" in out
    assert out.endswith(b"hello 2")


async def test_an_h2c_upgrade_without_settings_is_served_over_http11(
    run_server: Callable[..., Any],
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(hello_app) as server:
            done = await anyio.run_process(
                [
                    "curl",
                    "-sS",
                    "-i",
                    "-H",
                    "Connection: Upgrade",
                    "-H",
                    "Upgrade: h2c",
                    f"{base(server)}/",
                ]
            )
    assert done.stdout.startswith(b"HTTP/1.1 200"), done.stdout
    assert done.stdout.endswith(b"hello 1.1")
