"""Test an app through a real trio-asgi server on a free port (pytest with pytest-trio).

Put ``trio_mode = true`` under ``[tool.pytest.ini_options]`` so async tests run on trio.
"""

from __future__ import annotations

import httpx
import trio
from hello_app import app

import trio_asgi


async def test_hello(nursery: trio.Nursery) -> None:
    server = await nursery.start(trio_asgi.serve, app, trio_asgi.Config(bind=("127.0.0.1:0",)))
    async with httpx.AsyncClient(base_url=f"http://{server.addresses[0]}") as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert response.text == "Hello, world!\n"
    server.shutdown()
