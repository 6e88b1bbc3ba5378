"""A PROXY header in front of TLS that trio-asgi terminates itself (TLS passthrough).

A TCP balancer in passthrough mode (HAProxy ``mode tcp`` with ``send-proxy-v2``, a
cloud NLB) sends the PROXY header in clear, then the client's TLS bytes. The header is
read from the raw socket before the handshake, under the first-byte deadline; the
bytes after it (the ClientHello, often in the same segment) go to the handshake.
Real sockets, real TLS clients; a real HAProxy in ``tests/e2e/test_haproxy.py``.
"""

from __future__ import annotations

import json
import logging
import ssl
import struct
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.tls import TLSStream

from tests.server.test_tls import Certificates, tls_options, write_certificates
from trio_asgi import Server

pytestmark = pytest.mark.anyio

TIMEOUT = 10
V1_HEADER = b"PROXY TCP4 192.0.2.5 127.0.0.1 4242 443\r\n"


def v2_header(src: str, sport: int) -> bytes:
    body = bytes(map(int, src.split("."))) + bytes([127, 0, 0, 1]) + struct.pack("!HH", sport, 443)
    return b"\r\n\r\n\x00\r\nQUIT\n\x21\x11" + struct.pack("!H", len(body)) + body


@pytest.fixture
def certs(tmp_path: Any) -> Certificates:
    return write_certificates(tmp_path / "tls")


async def who_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = json.dumps({"client": scope["client"], "scheme": scope["scheme"]}).encode()
    headers = [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FirstSendPrefixed(anyio.abc.ByteStream):
    """A client stream that puts ``prefix`` in front of its first send (one segment)."""

    def __init__(self, stream: anyio.abc.ByteStream, prefix: bytes) -> None:
        self.stream = stream
        self.prefix = prefix

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self.stream.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        prefix, self.prefix = self.prefix, b""
        await self.stream.send(prefix + item)

    async def send_eof(self) -> None:
        await self.stream.send_eof()

    async def aclose(self) -> None:
        await self.stream.aclose()


async def connect_raw(server: Server) -> anyio.abc.SocketStream:
    host, _, port = server.addresses[0].rpartition(":")
    return await anyio.connect_tcp(host, int(port))


async def tls_over(stream: anyio.abc.ByteStream, context: ssl.SSLContext) -> TLSStream:
    return await TLSStream.wrap(
        stream, hostname="127.0.0.1", ssl_context=context, standard_compatible=False
    )


async def get(stream: anyio.abc.ByteStream) -> dict[str, Any]:
    await stream.send(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    data = b""
    while b"}" not in data:
        data += await stream.receive()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    seen: dict[str, Any] = json.loads(body)
    return seen


async def test_header_then_handshake_in_separate_writes(
    run_server: Callable[..., Any], certs: Certificates
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(who_app, proxy_protocol=True, **tls_options(certs)) as server:
            raw = await connect_raw(server)
            await raw.send(V1_HEADER)
            stream = await tls_over(raw, certs.client_context())
            try:
                # Two requests on the connection: the peer stays what the header said.
                assert await get(stream) == {"client": ["192.0.2.5", 4242], "scheme": "https"}
                assert await get(stream) == {"client": ["192.0.2.5", 4242], "scheme": "https"}
            finally:
                await stream.aclose()


async def test_header_and_client_hello_in_one_segment(
    run_server: Callable[..., Any], certs: Certificates
) -> None:
    # The leftover after the header is the start of the handshake: it must reach TLS.
    with anyio.fail_after(TIMEOUT):
        async with run_server(who_app, proxy_protocol=True, **tls_options(certs)) as server:
            raw = FirstSendPrefixed(await connect_raw(server), v2_header("192.0.2.6", 4343))
            stream = await tls_over(raw, certs.client_context())
            try:
                assert await get(stream) == {"client": ["192.0.2.6", 4343], "scheme": "https"}
            finally:
                await stream.aclose()


async def test_untrusted_peer_without_header_is_served_over_tls_directly(
    run_server: Callable[..., Any], certs: Certificates
) -> None:
    options = tls_options(certs, proxy_protocol=True, forwarded_allow_ips="10.0.0.0/8")
    with anyio.fail_after(TIMEOUT):
        async with run_server(who_app, **options) as server:
            stream = await tls_over(await connect_raw(server), certs.client_context())
            try:
                seen = await get(stream)
            finally:
                await stream.aclose()
    assert seen["client"][0] == "127.0.0.1"
    assert seen["scheme"] == "https"


@pytest.mark.parametrize(
    ("allow", "prefix", "message"),
    [
        ("127.0.0.1", b"", "did not start with a PROXY header"),
        ("10.0.0.0/8", V1_HEADER, "not in forwarded_allow_ips"),
    ],
)
async def test_a_missing_or_untrusted_header_closes_before_the_handshake(
    run_server: Callable[..., Any],
    certs: Certificates,
    caplog: pytest.LogCaptureFixture,
    allow: str,
    prefix: bytes,
    message: str,
) -> None:
    options = tls_options(certs, proxy_protocol=True, forwarded_allow_ips=allow)
    with anyio.fail_after(TIMEOUT), caplog.at_level(logging.DEBUG, "trio_asgi"):
        async with run_server(who_app, **options) as server:
            raw = FirstSendPrefixed(await connect_raw(server), prefix)
            with pytest.raises((ssl.SSLError, anyio.EndOfStream, anyio.BrokenResourceError)):
                await tls_over(raw, certs.client_context())
            await raw.aclose()
    assert len([r for r in caplog.records if message in r.getMessage()]) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


async def test_a_peer_that_sends_nothing_is_closed_at_the_first_byte_deadline(
    run_server: Callable[..., Any], certs: Certificates
) -> None:
    # A generous handshake deadline: only the first-byte deadline can close it in time.
    options = tls_options(
        certs, proxy_protocol=True, timeout_first_byte=0.5, timeout_tls_handshake=60
    )
    with anyio.fail_after(TIMEOUT):
        async with run_server(who_app, **options) as server, await connect_raw(server) as silent:
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await silent.receive()


async def test_a_handshake_that_stalls_after_the_header_is_closed_at_its_own_deadline(
    run_server: Callable[..., Any], certs: Certificates
) -> None:
    options = tls_options(
        certs, proxy_protocol=True, timeout_first_byte=60, timeout_tls_handshake=0.5
    )
    with anyio.fail_after(TIMEOUT):
        async with run_server(who_app, **options) as server, await connect_raw(server) as stalled:
            await stalled.send(V1_HEADER + b"\x16\x03\x01")  # then no more of the hello
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await stalled.receive()
