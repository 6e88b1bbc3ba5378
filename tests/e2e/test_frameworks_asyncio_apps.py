"""A plain ASGI app written for asyncio, served from an asyncio program.

It is ``docs/examples/embed_asyncio.py``, the example of the asyncio how-to: it runs
as shown on asyncio, and on trio each request fails with a 500 (the app calls
``asyncio.get_running_loop()``), while the server itself carries on.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from frameworks_helpers import serve_app

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"e2e_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_example_runs_on_asyncio(capsys: pytest.CaptureFixture[str]) -> None:
    example = load_example("embed_asyncio")
    await example.main()
    assert capsys.readouterr().out == "200 Hello from /hello on asyncio\n"


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_example_app_fails_on_trio_and_the_server_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_asgi")
    example = load_example("embed_asyncio")
    async with serve_app(example.app, lifespan="off") as live, httpx.AsyncClient() as client:
        first = await client.get(f"{live.url}/a")
        second = await client.get(f"{live.url}/b")
    assert (first.status_code, second.status_code) == (500, 500)
    # The hint (the flag to use) is logged once at ERROR; the same failure later is debug.
    hints = [r for r in caplog.records if r.name == "trio_asgi" and "--loop" in r.getMessage()]
    assert [r.levelno for r in hints] == [logging.ERROR, logging.DEBUG]
    assert "use --loop asyncio" in hints[0].getMessage()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == hints[:1]
