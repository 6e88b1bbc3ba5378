"""The bench's HTTP/2 pieces against a real server: h2load's report read right, and the
idle HTTP/2 client.

A bench row is only worth its parser: a run whose requests failed must never show as
a figure, so the failure paths are driven by a real h2load against a real server (a
404 route, a server that resets every stream), not by canned text.
"""

from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from bench import _h2, idle_client
from trio_asgi import Server

pytestmark = pytest.mark.anyio

TIMEOUT = 60


async def hello_or_404(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    status = 200 if scope["path"] == "/" else 404
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"hi"})


def base(server: Server) -> str:
    return f"http://{server.addresses[0]}"


async def h2load(url: str, requests: int, upload: int = 0) -> tuple[_h2.H2loadSummary | None, str]:
    argv = _h2.h2load_argv(url, connections=2, streams=8, requests=requests, upload=upload)
    return await anyio.to_thread.run_sync(_h2.run_h2load, argv, TIMEOUT)


async def test_a_clean_run_is_a_figure(run_server: Callable[..., Any]) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(hello_or_404) as server:
            summary, note = await h2load(f"{base(server)}/", 300, upload=100_000)
    assert note == ""
    assert summary is not None
    assert (summary.done, summary.succeeded, summary.errors) == (300, 300, 0)
    assert summary.req_per_s > 0
    assert summary.mean_ms is not None
    assert summary.mean_ms > 0


async def test_non_2xx_responses_are_errors(run_server: Callable[..., Any]) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(hello_or_404) as server:
            summary, _ = await h2load(f"{base(server)}/missing", 50)
    assert summary is not None
    assert summary.succeeded == 0
    assert summary.errors == 50  # each 404 once


async def test_reset_streams_are_errors(run_server: Callable[..., Any]) -> None:
    async def fails(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("after the response started: the stream is reset")

    with anyio.fail_after(TIMEOUT):
        async with run_server(fails) as server:
            summary, _ = await h2load(f"{base(server)}/", 40)
    assert summary is not None
    assert summary.errors >= 40


async def test_no_report_is_a_failure_note() -> None:
    # Nothing listens on this port: h2load prints no report.
    with anyio.fail_after(TIMEOUT):
        summary, note = await h2load("http://127.0.0.1:1/", 1)
    assert summary is None
    assert note.startswith("failed: h2load exited")


async def test_the_idle_client_holds_http2_connections(run_server: Callable[..., Any]) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(hello_or_404, timeout_keep_alive=300) as server:
            host, _, port = server.addresses[0].rpartition(":")
            result = await anyio.to_thread.run_sync(
                lambda: idle_client.run(host, int(port), 40, [os.getpid()], 30, h2=True)
            )
    assert result["connections"] == 40
    assert result["closed_by_server"] == 0
    assert isinstance(result["kib_per_conn"], float)


async def test_the_idle_client_sees_an_http2_close(run_server: Callable[..., Any]) -> None:
    # Our keep-alive timeout closes idle HTTP/2 connections with GOAWAY: counted as closed.
    with anyio.fail_after(TIMEOUT):
        async with run_server(hello_or_404, timeout_keep_alive=0.2) as server:
            host, _, port = server.addresses[0].rpartition(":")
            socks = await anyio.to_thread.run_sync(
                lambda: idle_client.open_batch(host, int(port), 4, 1e12, h2=True)
            )
            try:
                # Blocks (in a thread) until every socket is readable, or 10 s.
                await anyio.to_thread.run_sync(all_readable, socks, 10.0)
                assert idle_client.count_closed(socks, h2=True) == 4
            finally:
                for sock in socks:
                    sock.close()


def all_readable(socks: list[socket.socket], within: float) -> None:
    deadline = time.monotonic() + within
    waiting = set(socks)
    while waiting and time.monotonic() < deadline:
        ready, _, _ = select.select(list(waiting), [], [], deadline - time.monotonic())
        waiting -= set(ready)
