"""The Prometheus listener: ``GET /metrics`` on its own bind (``Config.metrics_bind``).

Deliberately tiny and separate from the app's listeners: scrapes never reach the
app and are not counted as requests, and a busy or broken app port does not hide
the figures that would explain it. One request per connection (``Connection:
close``), a request head of at most :data:`MAX_HEAD` bytes that must arrive within
:data:`SCRAPE_TIMEOUT` seconds, and at most :data:`MAX_SCRAPES` connections at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

import anyio
import anyio.abc

from .._config import TCPBind, parse_bind
from .._metrics import ServerStatistics
from .._metrics_text import CONTENT_TYPE, render
from ._listeners import describe_address

logger = logging.getLogger("trio_asgi")

MAX_HEAD = 8192
SCRAPE_TIMEOUT = 10.0
MAX_SCRAPES = 8


async def open_metrics_listener(bind: str) -> anyio.abc.SocketListener:
    """Bind ``HOST:PORT``; an :class:`OSError` if it cannot be bound."""
    parsed = parse_bind(bind)
    assert isinstance(parsed, TCPBind)  # Config checked it
    multi = await anyio.create_tcp_listener(local_host=parsed.host, local_port=parsed.port)
    # One address, one socket: take the first (create_tcp_listener may bind v4 and v6).
    listener = multi.listeners[0]
    for extra in multi.listeners[1:]:
        await extra.aclose()
    assert isinstance(listener, anyio.abc.SocketListener)
    return listener


def listener_address(listener: anyio.abc.SocketListener) -> str:
    return describe_address(listener.extra(anyio.abc.SocketAttribute.local_address))


async def serve_metrics(
    listener: anyio.abc.SocketListener, statistics: Callable[[], ServerStatistics]
) -> None:
    """Answer scrapes until cancelled; closes ``listener``."""
    logger.info("Metrics on http://%s/metrics", listener_address(listener))
    limiter = anyio.CapacityLimiter(MAX_SCRAPES)
    async with listener:
        await listener.serve(partial(_answer, statistics, limiter))


async def _answer(
    statistics: Callable[[], ServerStatistics],
    limiter: anyio.CapacityLimiter,
    stream: anyio.abc.SocketStream,
) -> None:
    async with stream:
        if limiter.available_tokens == 0:
            return  # too many scrapers at once: close at once
        async with limiter:
            with anyio.move_on_after(SCRAPE_TIMEOUT):
                try:
                    head = await _read_head(stream)
                    if head is not None:
                        await stream.send(_response(head, statistics))
                except (anyio.BrokenResourceError, anyio.EndOfStream, OSError):
                    pass  # the scraper went away


async def _read_head(stream: anyio.abc.SocketStream) -> bytes | None:
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > MAX_HEAD:
            return None
        buffer += await stream.receive(MAX_HEAD)
    return buffer


def _response(head: bytes, statistics: Callable[[], ServerStatistics]) -> bytes:
    method, _, rest = head.partition(b" ")
    target = rest.partition(b" ")[0].partition(b"?")[0]
    if target != b"/metrics":
        return _plain(404, b"Not Found", b"Not found: try /metrics\n")
    if method not in (b"GET", b"HEAD"):
        return _plain(405, b"Method Not Allowed", b"GET /metrics\n", b"Allow: GET, HEAD\r\n")
    body = render([statistics()]).encode("utf-8")
    head_out = (
        b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        % (CONTENT_TYPE.encode("ascii"), len(body))
    )
    return head_out if method == b"HEAD" else head_out + body


def _plain(status: int, reason: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s"
        b"Connection: close\r\n\r\n%s" % (status, reason, len(body), extra, body)
    )
