"""Views of the test project: async and sync, as Django's ASGI handler runs them.

``PROBE`` is how a test and a view wait for each other: the test sets it to an object
with the events it needs before the request, on the test's own event loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import sniffio
from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

#: Set by the test: events and records shared with the views.
PROBE: Any = None


def _in_worker_thread() -> bool:
    return threading.current_thread() is not threading.main_thread()


async def async_view(request: HttpRequest, number: int) -> HttpResponse:
    return JsonResponse(
        {
            "number": number,
            "tags": request.GET.getlist("tag"),
            "backend": sniffio.current_async_library(),
            "in_worker_thread": _in_worker_thread(),
        }
    )


def sync_view(request: HttpRequest) -> HttpResponse:
    # Django runs a sync view through sync_to_async, in a worker thread.
    return JsonResponse({"in_worker_thread": _in_worker_thread(), "method": request.method})


def _blocking_lookup(key: str) -> str:
    # Stands for an ORM call: sync code an async view must not run on the loop.
    return f"{key}@{'worker' if _in_worker_thread() else 'loop'}"


async def bridge_view(request: HttpRequest) -> HttpResponse:
    value = await sync_to_async(_blocking_lookup)(request.GET["key"])
    return JsonResponse({"value": value})


async def echo_view(request: HttpRequest) -> HttpResponse:
    payload = json.loads(request.body)
    return JsonResponse({"got": payload, "length": len(request.body)}, status=201)


async def stream_view(request: HttpRequest) -> HttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first\n"
        await PROBE.release.wait()  # sent only after the test has read "first"
        yield b"second\n"

    return StreamingHttpResponse(chunks(), content_type="text/plain")


async def wait_view(request: HttpRequest) -> HttpResponse:
    PROBE.waiting.set()
    try:
        await asyncio.Event().wait()  # forever: only a client disconnect ends this
    except asyncio.CancelledError:
        PROBE.cancelled.set()
        raise
    return HttpResponse("unreachable")


async def boom_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")
