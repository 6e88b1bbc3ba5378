"""Serve an app with Prometheus metrics on a second port, scrape them once, and read
the same figures from ``Server.statistics()``."""

from __future__ import annotations

from typing import Any

import httpx
import trio

import trio_asgi


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def main() -> None:
    config = trio_asgi.Config(
        bind=("127.0.0.1:0",),
        metrics_bind="127.0.0.1:0",  # off by default; any free port here
        access_log=False,
    )
    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_asgi.serve, app, config)
        async with httpx.AsyncClient() as client:
            await client.get(f"http://{server.addresses[0]}/")
            scraped = await client.get(f"http://{server.metrics_address}/metrics")
        for line in scraped.text.splitlines():
            if line.startswith("trio_asgi_requests_total{"):
                print(line.replace(f'pid="{server.statistics().pid}"', 'pid="PID"'))
        print(server.statistics().requests)
        server.shutdown()


if __name__ == "__main__":
    trio.run(main)
