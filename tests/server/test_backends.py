"""The server on each backend: which loop runs what, wrong-loop apps, and app shapes.

Every test runs on trio and on asyncio (``anyio_backend`` in ``conftest.py``) unless
it is about one runtime only: an asyncio-only app on trio, a trio-only app on asyncio.
Such an app must fail with one log line that names the ``--loop`` to use, at its
first request, WebSocket or lifespan startup, not with a deep traceback (that goes
to the debug level).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import anyio
import anyio.to_thread
import pytest
import sniffio
import trio

from trio_asgi import LifespanFailure, serve
from trio_asgi._types import Receive, Scope, Send

pytestmark = pytest.mark.anyio

TIMEOUT = 5


async def respond(send: Send, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def get(connect: Any, server: Any, path: str = "/") -> Any:
    client = await connect(server)
    await client.send(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    response = await client.read_response()
    await client.aclose()  # after an error the server lingers until the client closes
    return response


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "trio_asgi" and r.levelno >= logging.ERROR]


# --- each parameter runs on its own backend --------------------------------------------------


async def test_each_param_runs_on_its_backend(anyio_backend, run_server, connect):
    # pytest-trio's trio_mode would run every coroutine test under trio.run: conftest.py
    # hands tests marked anyio back to the anyio plugin. This checks that it worked.
    assert sniffio.current_async_library() == anyio_backend
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(sniffio.current_async_library())
        await respond(send, b"ok")

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            assert (await get(connect, server)).body == b"ok"
    assert seen == [anyio_backend]


# --- ASGI 2 and class-based apps over a real socket -------------------------------------------


class ASGI2App:
    """An ASGI 2 double callable as a class: instantiated with the scope, then called."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, receive: Receive, send: Send) -> None:
        await respond(send, f"asgi2 class {self.scope['path']}".encode())


def asgi2_function(scope: Scope) -> Any:
    async def instance(receive: Receive, send: Send) -> None:
        await respond(send, f"asgi2 function {scope['path']}".encode())

    return instance


class ASGI3Class:
    """ASGI 3 as a class: instantiated with all three arguments, then awaited."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope, self.send = scope, send

    def __await__(self) -> Any:
        return respond(self.send, f"asgi3 class {self.scope['path']}".encode()).__await__()


class ASGI3Instance:
    """ASGI 3 as an object with an async ``__call__`` (how middleware usually looks)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, f"asgi3 instance {scope['path']}".encode())


@pytest.mark.parametrize(
    ("app", "interface", "expected"),
    [
        (ASGI2App, "auto", b"asgi2 class /x"),
        (ASGI2App, "asgi2", b"asgi2 class /x"),
        (asgi2_function, "auto", b"asgi2 function /x"),
        (asgi2_function, "asgi2", b"asgi2 function /x"),
        (ASGI3Class, "auto", b"asgi3 class /x"),
        (ASGI3Class, "asgi3", b"asgi3 class /x"),
        (ASGI3Instance(), "auto", b"asgi3 instance /x"),
    ],
)
async def test_asgi2_and_class_based_apps(run_server, connect, app, interface, expected):
    with anyio.fail_after(TIMEOUT):
        async with run_server(app, interface=interface) as server:
            response = await get(connect, server, "/x")
    assert response.status == 200
    assert response.body == expected


async def test_asgi2_app_with_lifespan(run_server, connect):
    events: list[str] = []

    class App:
        def __init__(self, scope: Scope) -> None:
            self.scope = scope

        async def __call__(self, receive: Receive, send: Send) -> None:
            if self.scope["type"] == "lifespan":
                events.append((await receive())["type"])
                await send({"type": "lifespan.startup.complete"})
                events.append((await receive())["type"])
                await send({"type": "lifespan.shutdown.complete"})
                return
            await respond(send, b"ok")

    with anyio.fail_after(TIMEOUT):
        async with run_server(App, lifespan="on") as server:
            assert (await get(connect, server)).body == b"ok"
    assert events == ["lifespan.startup", "lifespan.shutdown"]


# --- an asyncio-only app on trio ----------------------------------------------------------------


async def uses_get_running_loop() -> None:
    asyncio.get_running_loop()


async def uses_asyncio_sleep() -> None:
    await asyncio.sleep(0.001)


async def uses_asyncio_queue() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    queue.put_nowait(1)
    await queue.get()
    await queue.get()  # empty: waits on an asyncio future


async def uses_asyncio_task_group() -> None:
    async with asyncio.TaskGroup() as group:
        group.create_task(asyncio.sleep(0))


ASYNCIO_ONLY = [uses_get_running_loop, uses_asyncio_sleep, uses_asyncio_queue]
ASYNCIO_HINT = "but the server runs on trio: use --loop asyncio"


def app_doing(work: Any) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await receive()
        await work()
        if scope["type"] == "http":
            await respond(send, f"ran on {sniffio.current_async_library()}".encode())
        else:
            await send({"type": "websocket.close"})

    return app


def assert_one_hint_line(caplog: pytest.LogCaptureFixture, prefix: str, hint: str) -> None:
    (record,) = errors(caplog)
    message = record.getMessage()
    assert message.startswith(prefix), message
    assert message.endswith(hint), message
    assert "\n" not in message
    assert record.exc_info is None  # no traceback at the error level...
    traced = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    assert len(traced) == 1  # ...it is at the debug level


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.parametrize("work", ASYNCIO_ONLY)
async def test_asyncio_app_on_trio_fails_its_request_with_one_line(
    run_server, connect, caplog, work
):
    caplog.set_level(logging.DEBUG, logger="trio_asgi")
    with anyio.fail_after(TIMEOUT):
        async with run_server(app_doing(work)) as server:
            response = await get(connect, server, "/x")
    assert response.status == 500
    assert_one_hint_line(caplog, "Exception in ASGI application (GET /x): ", ASYNCIO_HINT)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_asyncio_app_on_trio_hint_inside_an_exception_group(run_server, connect, caplog):
    caplog.set_level(logging.DEBUG, logger="trio_asgi")
    with anyio.fail_after(TIMEOUT):
        async with run_server(app_doing(uses_asyncio_task_group)) as server:
            assert (await get(connect, server)).status == 500
    assert_one_hint_line(caplog, "Exception in ASGI application (GET /): ", ASYNCIO_HINT)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_asyncio_app_on_trio_fails_its_websocket_with_one_line(run_server, connect, caplog):
    caplog.set_level(logging.DEBUG, logger="trio_asgi")
    with anyio.fail_after(TIMEOUT):
        async with run_server(app_doing(uses_get_running_loop)) as server:
            client = await connect(server)
            await client.send(
                b"GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            assert (await client.read_response()).status == 500
            await client.aclose()
    assert_one_hint_line(caplog, "Exception in ASGI application (WebSocket /ws): ", ASYNCIO_HINT)


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.parametrize("mode", ["auto", "on"])
async def test_asyncio_app_on_trio_fails_lifespan_startup_with_one_line(
    server_config, caplog, mode
):
    caplog.set_level(logging.DEBUG, logger="trio_asgi")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        asyncio.get_running_loop()  # e.g. an asyncpg pool made at startup
        await send({"type": "lifespan.startup.complete"})

    with anyio.fail_after(TIMEOUT), pytest.raises(LifespanFailure) as info:
        await serve(app, server_config(lifespan=mode))
    assert str(info.value) == (
        "lifespan startup: RuntimeError: no running event loop; "
        "the app needs asyncio but the server runs on trio: use --loop asyncio"
    )
    assert errors(caplog) == []  # the one line is the failure, which run() logs
    assert any(r.levelno == logging.DEBUG and r.exc_info for r in caplog.records)


async def test_asyncio_app_runs_on_asyncio_only(anyio_backend, run_server, connect, caplog):
    with anyio.fail_after(TIMEOUT):
        async with run_server(app_doing(uses_asyncio_queue_with_an_item)) as server:
            response = await get(connect, server)
    if anyio_backend == "asyncio":
        assert (response.status, response.body) == (200, b"ran on asyncio")
        assert errors(caplog) == []
    else:
        assert response.status == 500
        assert errors(caplog)[0].getMessage().endswith(ASYNCIO_HINT)


async def uses_asyncio_queue_with_an_item() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    await queue.put(1)
    await asyncio.sleep(0)
    assert await queue.get() == 1


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_no_running_loop_in_a_thread_on_asyncio_is_an_ordinary_error(
    run_server, connect, caplog
):
    """'no running event loop' from a worker thread is a bug in the app, not the wrong loop."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await anyio.to_thread.run_sync(asyncio.get_running_loop)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            assert (await get(connect, server)).status == 500
    (record,) = errors(caplog)
    assert record.getMessage() == "Exception in ASGI application (GET /)"
    assert record.exc_info is not None


# --- a trio-only app on asyncio -----------------------------------------------------------------


async def uses_trio_sleep() -> None:
    await trio.sleep(0.001)


async def uses_trio_nursery() -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep, 0)


async def uses_trio_checkpoint() -> None:
    await trio.lowlevel.checkpoint()


TRIO_ONLY = [uses_trio_sleep, uses_trio_nursery, uses_trio_checkpoint]
TRIO_HINT = "but the server runs on asyncio: use --loop trio"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("work", TRIO_ONLY)
async def test_trio_app_on_asyncio_fails_its_request_with_one_line(
    run_server, connect, caplog, work
):
    caplog.set_level(logging.DEBUG, logger="trio_asgi")
    with anyio.fail_after(TIMEOUT):
        async with run_server(app_doing(work)) as server:
            assert (await get(connect, server, "/x")).status == 500
    assert_one_hint_line(caplog, "Exception in ASGI application (GET /x): ", TRIO_HINT)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_trio_app_on_asyncio_fails_lifespan_startup_with_one_line(server_config, caplog):
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await trio.sleep(0.001)
        await send({"type": "lifespan.startup.complete"})

    with anyio.fail_after(TIMEOUT), pytest.raises(LifespanFailure) as info:
        await serve(app, server_config(lifespan="auto"))
    assert str(info.value).startswith("lifespan startup: RuntimeError: ")
    assert str(info.value).endswith(TRIO_HINT)
    assert errors(caplog) == []


async def test_trio_app_runs_on_trio_only(anyio_backend, run_server, connect, caplog):
    with anyio.fail_after(TIMEOUT):
        async with run_server(app_doing(uses_trio_nursery)) as server:
            response = await get(connect, server)
    if anyio_backend == "trio":
        assert (response.status, response.body) == (200, b"ran on trio")
        assert errors(caplog) == []
    else:
        assert response.status == 500
        assert errors(caplog)[0].getMessage().endswith(TRIO_HINT)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_asyncio_app_on_trio_failing_at_lifespan_shutdown_logs_one_line(run_server, caplog):
    caplog.set_level(logging.DEBUG, logger="trio_asgi")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        asyncio.get_running_loop()  # e.g. closing an asyncio connection pool

    with anyio.fail_after(TIMEOUT):
        async with run_server(app, lifespan="on"):
            pass
    first, then = errors(caplog)
    assert first.getMessage() == (
        "Exception in 'lifespan' protocol: RuntimeError: no running event loop; "
        "the app needs asyncio but the server runs on trio: use --loop asyncio"
    )
    assert first.exc_info is None
    assert then.getMessage() == "the app's lifespan call ended without answering shutdown"
