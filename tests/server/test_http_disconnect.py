"""``http.disconnect`` as the ASGI spec describes it, over real sockets."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

pytestmark = pytest.mark.anyio

TIMEOUT = 5
GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"
DISCONNECT = {"type": "http.disconnect"}


async def receive_in_cancelled_scope(receive: Any) -> dict[str, Any] | None:
    """Starlette's ``is_disconnected()``: a receive() that must not wait."""
    with anyio.CancelScope() as scope:
        scope.cancel()
        return await receive()
    return None  # receive() was cancelled: nothing was queued


async def test_disconnect_returned_every_time_after_the_response(run_server, connect):
    seen: list[Any] = []
    done = anyio.Event()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        seen.extend([await receive() for _ in range(3)])
        seen.append(await receive_in_cancelled_scope(receive))
        done.set()

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(GET)
            response = await client.read_response()
            await done.wait()
    assert response.body == b"done"
    assert seen == [DISCONNECT] * 4


async def test_receive_blocks_during_the_response_until_the_client_leaves(run_server, connect):
    waiting = anyio.Event()
    returned = anyio.Event()
    seen: list[Any] = []

    async def app(scope, receive, send):
        assert (await receive())["type"] == "http.request"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"streaming", "more_body": True})
        waiting.set()
        seen.append(await receive())
        returned.set()

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(GET)
            await client.read_until(b"streaming")
            await waiting.wait()
            assert not returned.is_set()  # still blocked: the client is there
            await client.aclose()
            await returned.wait()
    assert seen == [DISCONNECT]


async def test_receive_during_the_response_returns_when_it_completes(run_server, connect):
    """A receive() waiting while the same app streams is woken by the response's end;
    a pipelined request read meanwhile is not mistaken for a disconnect and is served."""
    calls: list[str] = []
    seen: list[Any] = []

    async def app(scope, receive, send):
        calls.append(scope["path"])
        await receive()
        if scope["path"] == "/second":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"second"})
            return
        started = anyio.Event()

        async def watch() -> None:
            started.set()
            seen.append(await receive())

        async with anyio.create_task_group() as nursery:
            nursery.start_soon(watch)
            await started.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"first", "more_body": True})
            await send({"type": "http.response.body", "body": b"!"})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(GET.replace(b"/", b"/first", 1) + GET.replace(b"/", b"/second", 1))
            first = await client.read_response()
            second = await client.read_response()
    assert (first.body, second.body) == (b"first!", b"second")
    assert seen == [DISCONNECT]
    assert calls == ["/first", "/second"]


async def test_queued_disconnect_is_returned_inside_a_cancelled_scope(leave_mid_response):
    seen: list[Any] = []
    done = anyio.Event()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        seen.append(await receive())  # the client leaves during the response
        seen.append(await receive_in_cancelled_scope(receive))
        seen.append(await receive_in_cancelled_scope(receive))
        done.set()

    await leave_mid_response(app, GET, done)
    assert seen == [DISCONNECT] * 3


async def test_cancelled_receive_while_nothing_is_known_then_a_real_disconnect(run_server, connect):
    """is_disconnected() before anything happened returns nothing and loses nothing."""
    checked = anyio.Event()
    seen: list[Any] = []

    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        seen.append(await receive_in_cancelled_scope(receive))
        checked.set()
        seen.append(await receive())

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(GET)
            await client.read_until(b"\r\n\r\n")
            await checked.wait()
            await client.aclose()
    assert seen == [None, DISCONNECT]


async def test_client_leaving_mid_body_gives_disconnect(run_server, connect):
    got_part = anyio.Event()
    seen: list[Any] = []
    done = anyio.Event()

    async def app(scope, receive, send):
        seen.append(await receive())
        got_part.set()
        seen.append(await receive())
        seen.append(await receive())
        done.set()

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\nabc")
            await got_part.wait()
            await client.aclose()
            await done.wait()
    assert seen == [
        {"type": "http.request", "body": b"abc", "more_body": True},
        DISCONNECT,
        DISCONNECT,
    ]


async def test_app_that_waits_for_disconnect_before_answering(run_server, connect):
    """Long polling: the app waits on receive() before it responds; the client leaves."""
    seen: list[Any] = []
    done = anyio.Event()

    async def app(scope, receive, send):
        seen.append(await receive())
        seen.append(await receive())
        done.set()

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(GET)
            # The request is complete and nothing was sent: the app waits until we leave.
            await client.aclose()
            await done.wait()
    assert seen == [{"type": "http.request", "body": b"", "more_body": False}, DISCONNECT]


async def test_two_tasks_receiving_during_the_response(run_server, connect):
    """Starlette's StreamingResponse: one task listens for the disconnect while another
    streams and polls is_disconnected(); both see the disconnect once the client leaves."""
    listening = anyio.Event()
    polled = anyio.Event()
    seen: dict[str, list[Any]] = {"listener": [], "poller": []}

    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})

        async def listener() -> None:
            listening.set()
            seen["listener"].append(await receive())

        async with anyio.create_task_group() as nursery:
            nursery.start_soon(listener)
            await listening.wait()
            seen["poller"].append(await receive_in_cancelled_scope(receive))
            polled.set()
            seen["poller"].append(await receive())
        seen["poller"].append(await receive_in_cancelled_scope(receive))

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(GET)
            await client.read_until(b"\r\n\r\n")
            await polled.wait()
            await client.aclose()
    assert seen == {"listener": [DISCONNECT], "poller": [None, DISCONNECT, DISCONNECT]}
