"""Testing an app: its errors are the failure, leaks fail, fixtures and runners on both loops."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from trio_asgi import ASGIProtocolError
from trio_asgi.testing import (
    BACKENDS,
    HungRequest,
    IncompleteResponse,
    Receive,
    Scope,
    Send,
    TestRequest,
    TestServer,
    max_peak,
    open_test_server,
    run_in_virtual_time,
    with_test_server,
)
from trio_asgi.testing.strategies import Disconnect, disconnects, http_requests

pytestmark = pytest.mark.parametrize("backend", BACKENDS)


class PlantedError(Exception):
    pass


async def crashes(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        raise PlantedError(scope["path"])


async def crashes_in_a_task_group(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        async with anyio.create_task_group():
            raise PlantedError("inside")


async def body_before_start(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.body", "body": b"x"})


async def returns_early(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200})


async def never_notices(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200})
        # The head waits for a first body message (or for the app to wait on the client).
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        await anyio.sleep_forever()  # waits for news: never looks at the client


async def notices(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200})
        while (await receive())["type"] != "http.disconnect":
            pass


def _first_response(app: Any, backend: str, **options: Any) -> None:
    @with_test_server(app, backend=backend, lifespan="off", **options)
    async def check(server: TestServer) -> None:
        client = await server.connect()
        await client.request("GET", "/boom")

    check()


def test_the_app_exception_is_the_failure(backend: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "trio_asgi"), pytest.raises(PlantedError, match="/boom"):
        _first_response(crashes, backend)
    # Raised once, whole: not also logged with its traceback.
    assert not [r for r in caplog.records if r.name == "trio_asgi"]


def test_a_single_member_group_is_unwrapped(backend: str) -> None:
    with pytest.raises(PlantedError, match="inside"):
        _first_response(crashes_in_a_task_group, backend)


def test_an_asgi_order_error_names_the_message(backend: str) -> None:
    with pytest.raises(ASGIProtocolError, match=r"'http.response.body'.*state START"):
        _first_response(body_before_start, backend)


def test_an_incomplete_response_fails(backend: str) -> None:
    with pytest.raises(IncompleteResponse, match="without completing"):
        _first_response(returns_early, backend)


def test_without_raise_app_exceptions_the_client_sees_a_500(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def check() -> None:
        async with open_test_server(crashes, lifespan="off", raise_app_exceptions=False) as server:
            client = await server.connect()
            assert (await client.request("GET", "/boom")).status == 500
        assert len(server.errors.records) == 1

    with caplog.at_level(logging.ERROR, "trio_asgi"):
        run_in_virtual_time(check, backend=backend)
    assert "Exception in ASGI application" in caplog.text


def test_an_app_that_never_notices_its_client_left_fails(backend: str) -> None:
    async def check(app: Any) -> None:
        async with open_test_server(app, lifespan="off") as server:
            client = await server.connect()
            await client.send(TestRequest().data)
            await client.receive_some()

    with pytest.raises(HungRequest, match="never noticed"):
        run_in_virtual_time(lambda: check(never_notices), backend=backend)
    run_in_virtual_time(lambda: check(notices), backend=backend)


def test_shutdown_that_has_to_cancel_a_request_fails(backend: str) -> None:
    async def check() -> None:
        options: dict[str, Any] = {"lifespan": "off", "timeout_graceful_shutdown": 1.0}
        async with open_test_server(never_notices, disconnect_timeout=None, **options) as server:
            client = await server.connect()
            await client.send(TestRequest().data)
            await client.receive_some()

    with pytest.raises(HungRequest, match="Graceful shutdown timed out"):
        run_in_virtual_time(check, backend=backend)


@pytest.mark.parametrize("app", [never_notices, notices])
def test_disconnects_find_the_leak(backend: str, app: Any) -> None:
    # Found at once; no shrinking (each shrink step waits out the leak's bound).
    @settings(max_examples=15, deadline=None, database=None, phases=[Phase.generate])
    @given(request=http_requests(paths=["/news"], methods=["GET"]), leave=disconnects())
    @with_test_server(app, backend=backend, lifespan="off")
    async def check(server: TestServer, request: Any, leave: Disconnect) -> None:
        await leave.play(await server.connect(), request.data)
        await server.wait_requests_finished(within=5)

    if app is never_notices:
        with pytest.raises(HungRequest):
            check()
    else:
        check()


async def _upload_app(scope: Scope, receive: Receive, send: Send, *, hold: bool) -> None:
    if scope["type"] != "http":
        return
    size, held = 0, []
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if hold:
            held.append(message.get("body", b""))  # the whole upload, in memory
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": b"%d" % size})


@pytest.mark.parametrize("hold", [True, False])
def test_max_peak_catches_a_body_held_in_memory(backend: str, hold: bool) -> None:
    size = 4 << 20
    wire = TestRequest("POST", "/upload", body=b"u" * size).data

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await _upload_app(scope, receive, send, hold=hold)

    async def check() -> None:
        async with open_test_server(app, lifespan="off") as server:
            client = await server.connect(receive_window=65536)
            with max_peak(1 << 20):
                await client.send_in_pieces(wire, 65536)
                assert (await client.read_response("POST")).body == b"%d" % size

    if hold:
        with pytest.raises(AssertionError, match="holds what should be streamed"):
            run_in_virtual_time(check, backend=backend)
    else:
        run_in_virtual_time(check, backend=backend)


@pytest.fixture
def asgi_app() -> Any:
    return notices


@pytest.fixture
def asgi_server_options() -> dict[str, Any]:
    return {"lifespan": "off"}


@given(leave=disconnects())
@settings(max_examples=5, deadline=None)
def test_asgi_serve_runs_a_server_per_example(
    asgi_serve: Any, asgi_backend: str, backend: str, leave: Disconnect
) -> None:
    # A function-scoped fixture under @given: the plugin lifts the health check for
    # asgi_serve (which holds no state between examples); each call is a new server.
    async def check(server: TestServer) -> None:
        await leave.play(await server.connect(), TestRequest().data)
        assert server.statistics().requests_served <= 1

    asgi_serve(check)


@pytest.mark.parametrize("asgi_backend", BACKENDS)
@given(nothing=st.just(None))
@settings(max_examples=2, deadline=None)
def test_asgi_backend_picks_the_loop(
    asgi_serve: Any, asgi_backend: str, backend: str, nothing: None
) -> None:
    seen: list[str] = []

    async def check(server: TestServer) -> None:
        import sniffio

        seen.append(sniffio.current_async_library())

    asgi_serve(check)
    assert seen == [asgi_backend]
