"""``/metrics`` on its own bind, scraped with a real client and parsed with
prometheus-client's parser, on trio and asyncio; scrapes are not requests."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from trio_asgi import Config, Server, serve

pytestmark = pytest.mark.anyio


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "pid"))
            found[(sample.name, labels)] = sample.value
    return found


async def test_scrape() -> None:
    config = Config(bind=("127.0.0.1:0",), metrics_bind="127.0.0.1:0", access_log=False)
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg, httpx.AsyncClient() as client:
            server: Server = await tg.start(serve, app, config)
            assert server.metrics_address is not None
            for _ in range(3):
                await client.get(f"http://{server.addresses[0]}/")
            url = f"http://{server.metrics_address}/metrics"
            first = await client.get(url)
            second = await client.get(url)
            assert first.headers["content-type"].startswith("text/plain; version=0.0.4")
            assert (await client.get(f"http://{server.metrics_address}/")).status_code == 404
            assert (await client.post(url)).status_code == 405
            head = await client.head(url)
            assert head.status_code == 200
            assert head.content == b""
            server.shutdown()
    before, after = samples(first.text), samples(second.text)
    requests = ("trio_asgi_requests_total", (("method", "GET"), ("status_class", "2xx")))
    assert before[requests] == after[requests] == 3  # scrapes are not requests
    assert before[("trio_asgi_request_duration_seconds_count", ())] == 3
    assert before[("trio_asgi_response_size_bytes_bucket", (("le", "+Inf"),))] == 3
    assert before[("trio_asgi_connections_opened_total", ())] == 1
    assert before[("trio_asgi_lifespan_state", (("state", "unsupported"),))] == 1
    assert before[("trio_asgi_sent_bytes_total", ())] > 3 * len(b"hello")
    families = {family.name for family in text_string_to_metric_families(first.text)}
    assert all(name.startswith("trio_asgi_") for name in families)


async def test_metrics_port_in_use_fails_like_a_bind() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        config = Config(bind=("127.0.0.1:0",), metrics_bind=f"127.0.0.1:{port}")
        with anyio.fail_after(10), pytest.raises(OSError, match="in use"):
            await serve(app, config)
    finally:
        taken.close()


async def test_off_by_default() -> None:
    config = Config(bind=("127.0.0.1:0",), access_log=False)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server: Server = await tg.start(serve, app, config)
            assert server.metrics_address is None
            assert server.statistics().request_duration is None
            assert "trio_asgi_requests_total" in server.metrics_text()
            server.shutdown()
