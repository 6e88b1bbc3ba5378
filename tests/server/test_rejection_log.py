"""The warning for requests refused as bad: one line, rate-limited per address, bounded."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from trio_asgi._server._rejections import INTERVAL, MAX_ADDRESSES, RejectionLog

TIMEOUT = 10


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_one_line_per_address_and_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = RejectionLog(clock)
    log.rejected(("10.0.0.1", 5000), 400, "request head")
    log.rejected(("10.0.0.1", 5001), 431, "request head")  # same host, other port
    log.rejected(("10.0.0.1", 5002), 400, "request body")
    log.rejected(("10.0.0.2", 5000), 414, "request head")
    assert warnings(caplog) == [
        "Rejected a bad request head from 10.0.0.1: 400 Bad Request",
        "Rejected a bad request head from 10.0.0.2: 414 Request-URI Too Long",
    ]
    clock.now += INTERVAL
    log.rejected(("10.0.0.1", 5003), 505, "request head")
    assert warnings(caplog)[-1] == (
        "Rejected a bad request head from 10.0.0.1: 505 HTTP Version Not Supported"
        " (2 more from this address since the last warning)"
    )
    log.rejected(None, 400, "WebSocket handshake")
    assert (
        warnings(caplog)[-1] == "Rejected a bad WebSocket handshake from unknown: 400 Bad Request"
    )


def test_the_address_table_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = RejectionLog(clock)
    for n in range(MAX_ADDRESSES + 100):
        log.rejected((f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}", 1), 400, "request head")
    assert len(log._last) == MAX_ADDRESSES
    assert len(warnings(caplog)) == MAX_ADDRESSES + 100
    # The oldest were forgotten: they may be warned about again at once.
    log.rejected(("10.0.0.0", 1), 400, "request head")
    assert len(warnings(caplog)) == MAX_ADDRESSES + 101


async def test_garbage_from_one_client_logs_one_warning(
    run_server: Any, connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(lambda *_: None) as server:
            for _ in range(5):
                client = await connect(server)
                await client.send(b"\x16\x03\x01 not http\r\n\r\n")
                assert (await client.read_until_eof()).startswith(b"HTTP/1.1 400 ")
    lines = warnings(caplog)
    assert lines == ["Rejected a bad request head from 127.0.0.1: 400 Bad Request"]
