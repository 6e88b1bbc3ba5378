"""Django's ASGI handler end to end: async and sync views over a real socket.

Django runs on asyncio only: its ASGI handler starts ``asyncio`` tasks to watch for
the client leaving, and asgiref's ``sync_to_async`` (how sync views run) needs the
asyncio loop's executor. So the tests run on asyncio, and one test pins down what
happens on trio: each request fails with a 500, and the server carries on.

The project is ``django_project/`` beside this file (``tests/e2e`` is on ``sys.path``).
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import httpx
import pytest

# Before Django is imported: the settings module is read from the environment.
os.environ["DJANGO_SETTINGS_MODULE"] = "django_project.settings"

import django
from django.core.asgi import get_asgi_application
from django_project import views
from frameworks_helpers import Live, serve_app

django.setup()

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """Django is asyncio-only (see the module docstring)."""
    return "asyncio"


@dataclass
class Probe:
    release: anyio.Event = field(default_factory=anyio.Event)
    waiting: anyio.Event = field(default_factory=anyio.Event)
    cancelled: anyio.Event = field(default_factory=anyio.Event)


@asynccontextmanager
async def running() -> AsyncIterator[tuple[Probe, Live, httpx.AsyncClient]]:
    probe = views.PROBE = Probe()
    try:
        # Django's handler refuses the lifespan scope: "auto" detects that and goes on.
        async with (
            serve_app(get_asgi_application(), lifespan="auto") as live,
            httpx.AsyncClient(base_url=live.url) as client,
        ):
            yield probe, live, client
    finally:
        views.PROBE = None


async def test_async_view_with_path_and_query() -> None:
    async with running() as (_, _, client):
        response = await client.get("/async/7?tag=a&tag=b")
    assert response.status_code == 200
    assert response.json() == {
        "number": 7,
        "tags": ["a", "b"],
        "backend": "asyncio",
        "in_worker_thread": False,
    }


async def test_sync_view_runs_in_a_worker_thread() -> None:
    async with running() as (_, _, client):
        got = await client.get("/sync")
        posted = await client.post("/sync")
    assert got.json() == {"in_worker_thread": True, "method": "GET"}
    assert posted.json() == {"in_worker_thread": True, "method": "POST"}


async def test_async_view_calls_sync_code_through_sync_to_async() -> None:
    async with running() as (_, _, client):
        response = await client.get("/bridge?key=user-1")
    assert response.json() == {"value": "user-1@worker"}


async def test_request_body() -> None:
    payload = {"name": "ünï", "items": list(range(1000))}
    async with running() as (_, _, client):
        response = await client.post("/echo", json=payload)
    assert response.status_code == 201
    assert response.json()["got"] == payload


async def test_streaming_response_is_not_buffered() -> None:
    async with running() as (probe, _, client), client.stream("GET", "/stream") as response:
        lines = response.aiter_lines()
        assert await anext(lines) == "first"
        probe.release.set()
        assert [line async for line in lines] == ["second"]


async def test_client_leaving_cancels_the_view() -> None:
    """Django listens for ``http.disconnect`` in a task of its own and cancels the view."""
    async with running() as (probe, live, _):
        stream = await anyio.connect_tcp(live.host, live.port)
        await stream.send(b"GET /wait HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await probe.waiting.wait()
        await stream.aclose()
        await probe.cancelled.wait()


async def test_not_found_and_server_error(caplog: pytest.LogCaptureFixture) -> None:
    async with running() as (_, _, client):
        missing = await client.get("/nowhere")
        failed = await client.get("/boom")
        after = await client.get("/sync")
    assert missing.status_code == 404
    # Django turns the view's exception into its own 500 page and logs it.
    assert failed.status_code == 500
    assert after.status_code == 200
    assert any(r.name == "django.request" and r.levelno == logging.ERROR for r in caplog.records)


@pytest.mark.parametrize("anyio_backend", ["trio"])
# Django, failing halfway, leaves a coroutine unawaited and a temporary file open.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_on_trio_each_request_fails_with_a_500(caplog: pytest.LogCaptureFixture) -> None:
    """Pins down the compatibility table's entry: if Django ever runs on trio, this fails
    and the docs need updating."""
    async with (
        serve_app(get_asgi_application(), lifespan="auto") as live,
        httpx.AsyncClient(base_url=live.url) as client,
    ):
        first = await client.get("/async/1")
        second = await client.get("/sync")
    assert (first.status_code, second.status_code) == (500, 500)
    errors = [r for r in caplog.records if r.name == "trio_asgi" and r.levelno >= logging.ERROR]
    assert errors, "the failures are logged"
    assert all("--loop asyncio" in r.getMessage() for r in errors[:2]), "with the way out"
    # The logged tracebacks keep Django's leftovers alive: drop them, so that they are
    # collected (and reported) now, under this test's warning filter.
    for record in caplog.records:
        record.exc_info = None
    gc.collect()
