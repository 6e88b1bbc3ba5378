"""A live server for WSGI tests, and WSGI apps that record what happened to them.

``async with live_wsgi(app, **options) as live`` serves ``app`` (with
``interface="wsgi"``) on 127.0.0.1:0 on the test's event loop and shuts it down
gracefully on exit; the block is bounded by :data:`SAFETY_TIMEOUT`.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from trio_asgi import Config, Server, serve

SAFETY_TIMEOUT = 20.0

Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], None]]


@dataclass(frozen=True)
class Live:
    server: Server
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@asynccontextmanager
async def live_wsgi(app: Any, **options: Any) -> AsyncIterator[Live]:
    config = Config(
        **{
            "bind": ("127.0.0.1:0",),
            "interface": "wsgi",
            "access_log": False,
            "timeout_graceful_shutdown": 5.0,
            **options,
        }
    )
    with anyio.fail_after(SAFETY_TIMEOUT):
        async with anyio.create_task_group() as tg:
            server: Server = await tg.start(serve, app, config)
            host, _, port = server.addresses[0].rpartition(":")
            try:
                yield Live(server, host, int(port))
            finally:
                server.shutdown()


@dataclass
class Recorder:
    """What a streaming app saw: chunks produced, whether close() ran, and when."""

    produced: int = 0
    closed: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


def endless_app(recorder: Recorder, chunk: bytes = b"x" * 65536) -> Any:
    """Yields ``chunk`` forever, counting; records close()."""

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _Endless(recorder, chunk)

    return app


class _Endless:
    def __init__(self, recorder: Recorder, chunk: bytes) -> None:
        self.recorder = recorder
        self.chunk = chunk

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        self.recorder.produced += 1
        return self.chunk

    def close(self) -> None:
        self.recorder.closed.set()
