"""A real HAProxy in front of trio-asgi with the PROXY protocol (v1, v2, v2 with TLS).

Also TLS passthrough: HAProxy in ``mode tcp`` sends the PROXY header, then the
client's TLS bytes to trio-asgi, which terminates TLS itself
(docs/examples/haproxy-tls-passthrough.cfg).

The config is docs/examples/haproxy-proxy-protocol.cfg with its ports, certificate and
``send-proxy*`` keyword replaced; HAProxy runs in the foreground (``-db``) and
trio-asgi in-process with ``proxy_protocol=True``. Clients connect from 127.0.0.2:
the app must see that address and the client's real port, and ``https`` when HAProxy
terminated TLS and said so in the v2 SSL TLV.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from frameworks_helpers import serve_app
from proxy_helpers import CLIENT_HOST, certificates, free_port, render, running, who_app

from tests.server.test_tls import write_certificates

#: From the PATH, else where the Debian package puts it (not on a user's PATH).
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
REQUEST = (
    b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n"
)


@asynccontextmanager
async def behind_haproxy(
    tmp_path: Path, send_proxy: str, **options: Any
) -> AsyncIterator[tuple[int, int, Any]]:
    """trio-asgi (``proxy_protocol=True``) behind HAProxy: its plain and TLS ports."""
    async with (
        serve_app(who_app, lifespan="off", proxy_protocol=True, **options) as live,
        haproxy_in_front(tmp_path, live.port, send_proxy) as ports,
    ):
        yield ports


@asynccontextmanager
async def haproxy_in_front(
    tmp_path: Path, app_port: int, send_proxy: str
) -> AsyncIterator[tuple[int, int, Any]]:
    plain_port, tls_port = free_port(), free_port()
    _, _, _, context = certificates(tmp_path)
    config = render(
        "haproxy-proxy-protocol.cfg",
        {
            "bind :80": f"bind 127.0.0.1:{plain_port}",
            "bind :443 ssl crt /etc/haproxy/example.pem": (
                f"bind 127.0.0.1:{tls_port} ssl crt {tmp_path / 'combined.pem'}"
            ),
            "127.0.0.1:8000 send-proxy-v2-ssl": f"127.0.0.1:{app_port} {send_proxy}",
        },
    )
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    with (tmp_path / "haproxy.out").open("wb") as log:
        async with running([HAPROXY, "-db", "-f", str(path)], plain_port, log):
            yield plain_port, tls_port, context


async def exchange(port: int, context: Any = None) -> tuple[bytes, int]:
    """Send one request through HAProxy and read until the connection ends.

    Returns everything received, and the client's own port.
    """
    stream = await anyio.connect_tcp(
        "127.0.0.1",
        port,
        local_host=CLIENT_HOST,
        ssl_context=context,
        tls_hostname="localhost" if context else None,
    )
    local_port: int = stream.extra(anyio.abc.SocketAttribute.local_port)
    received = b""
    try:
        await stream.send(REQUEST)
        with anyio.fail_after(10):
            while True:
                received += await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        pass
    finally:
        await anyio.aclose_forcefully(stream)
    return received, local_port


async def ask(port: int, context: Any = None) -> tuple[dict[str, Any], int]:
    """What the app saw of one request through HAProxy, and the client's own port."""
    data, local_port = await exchange(port, context)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    seen: dict[str, Any] = json.loads(body)
    return seen, local_port


@pytest.mark.parametrize("send_proxy", ["send-proxy", "send-proxy-v2", "send-proxy-v2-ssl"])
async def test_plain_connection_through_haproxy(tmp_path, send_proxy):
    async with behind_haproxy(tmp_path, send_proxy) as (plain, _, _):
        seen, port = await ask(plain)
    # The client's own address and port; the spoofed X-Forwarded-For is not believed.
    assert seen == {"client": [CLIENT_HOST, port], "scheme": "http"}


@pytest.mark.parametrize(
    ("send_proxy", "scheme"),
    [("send-proxy", "http"), ("send-proxy-v2", "http"), ("send-proxy-v2-ssl", "https")],
)
async def test_tls_terminated_at_haproxy(tmp_path, send_proxy, scheme):
    async with behind_haproxy(tmp_path, send_proxy) as (_, tls, context):
        seen, port = await ask(tls, context)
    # Only v2's SSL TLV can say the client used TLS.
    assert seen == {"client": [CLIENT_HOST, port], "scheme": scheme}


async def test_untrusted_haproxy_is_refused(tmp_path, caplog):
    with caplog.at_level(logging.INFO, "trio_asgi"):
        async with behind_haproxy(tmp_path, "send-proxy-v2", forwarded_allow_ips="10.0.0.0/8") as (
            plain,
            _,
            _,
        ):
            received, _ = await exchange(plain)
    assert b"200" not in received
    assert "not in forwarded_allow_ips" in caplog.text


async def test_haproxy_without_proxy_protocol_is_refused_when_trio_asgi_expects_it(tmp_path):
    # No send-proxy keyword: HAProxy (trusted) forwards the bare bytes.
    async with behind_haproxy(tmp_path, "") as (plain, _, _):
        received, _ = await exchange(plain)
    assert b"200" not in received


@pytest.mark.parametrize("send_proxy", ["send-proxy", "send-proxy-v2"])
async def test_tls_passed_through_haproxy_and_terminated_by_trio_asgi(tmp_path, send_proxy):
    certs = write_certificates(tmp_path / "tls")
    tls = {"ssl_certfile": str(certs.certfile), "ssl_keyfile": str(certs.keyfile)}
    port = free_port()
    async with serve_app(who_app, lifespan="off", proxy_protocol=True, **tls) as live:
        config = render(
            "haproxy-tls-passthrough.cfg",
            {
                "bind :443": f"bind 127.0.0.1:{port}",
                "127.0.0.1:8443 send-proxy-v2": (f"127.0.0.1:{live.port} {send_proxy}"),
            },
        )
        (tmp_path / "haproxy.cfg").write_text(config)
        with (tmp_path / "haproxy.out").open("wb") as log:
            async with running([HAPROXY, "-db", "-f", str(tmp_path / "haproxy.cfg")], port, log):
                seen, client_port = await ask(port, certs.client_context())
    # The client's address and port from the header; https because trio-asgi terminated TLS.
    assert seen == {"client": [CLIENT_HOST, client_port], "scheme": "https"}
