"""The lifespan protocol as served by ``serve()``: modes, failures, timeouts, state.

Issue 2 section 5 and PEERS.md: startup before any connection is accepted, state
copied into every scope, a failed startup raises :class:`LifespanFailure` with the
app's message, an app that raises on (or returns from) the lifespan scope runs
without lifespan in ``auto``, shutdown after the connections are drained.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import anyio
import pytest
from memory_helpers import (
    HANG,
    Client,
    LifespanApp,
    Running,
    hello_app,
    make_config,
    now,
    respond,
    running,
)

import trio_asgi
from trio_asgi import ASGIProtocolError, LifespanFailure
from trio_asgi._types import Message, Receive, Scope, Send
from trio_asgi.testing._memory import MemoryListener
from trio_asgi.testing._virtual_clock import wait_all_tasks_blocked

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("virtual_clock")]


async def serve_until_failure(app: Any, **options: Any) -> LifespanFailure:
    """Run ``serve()`` expecting its startup to fail; return the failure."""
    options.setdefault("lifespan", "auto")
    with anyio.fail_after(HANG), pytest.raises(LifespanFailure) as info:
        await trio_asgi.serve(app, make_config(**options), listeners=[MemoryListener()])
    return info.value


async def fetch(srv: Running, target: str = "/") -> bytes:
    client = await srv.connect()
    await client.request(target=target)
    response = await client.response()
    assert response.status == 200
    await client.aclose()
    return response.body


# --- the normal sequence ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "on"])
async def test_startup_before_serving_and_shutdown_after_draining(mode: str) -> None:
    gate = anyio.Event()
    app = LifespanApp()

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await gate.wait()
        await respond(send)

    app.http_app = slow
    async with running(app, make_config(lifespan=mode)) as srv:
        # nursery.start returned: startup is complete.
        assert [w for _, w in app.events] == ["lifespan.startup"]
        client = await srv.connect()
        await client.request()
        await wait_all_tasks_blocked()
        t0 = now()
        srv.server.shutdown()
        await anyio.sleep(1.0)
        assert [w for _, w in app.events] == ["lifespan.startup"]  # still draining
        gate.set()
        assert (await client.response()).closes
        await srv.wait_stopped()
    assert app.events == [
        (pytest.approx(0.0, abs=1e9), "lifespan.startup"),
        (pytest.approx(t0 + 1.0), "lifespan.shutdown"),
        (pytest.approx(t0 + 1.0), "returned"),
    ]


async def test_lifespan_scope() -> None:
    scopes: list[Scope] = []

    async def startup(scope: Scope) -> None:
        scopes.append(scope)

    async with running(LifespanApp(on_startup=startup), make_config(lifespan="on")):
        pass
    assert scopes[0]["type"] == "lifespan"
    assert scopes[0]["asgi"] == {"version": "3.0", "spec_version": "2.0"}
    assert scopes[0]["state"] == {}


async def test_connections_are_not_served_until_startup_completes() -> None:
    gate = anyio.Event()
    http_calls: list[float] = []

    async def startup(scope: Scope) -> None:
        await gate.wait()

    async def http(scope: Scope, receive: Receive, send: Send) -> None:
        http_calls.append(now())
        await respond(send)

    app = LifespanApp(http, on_startup=startup)
    listener = MemoryListener()
    config = make_config(lifespan="on")
    async with anyio.create_task_group() as nursery:
        servers: list[trio_asgi.Server] = []

        async def start() -> None:
            serve = functools.partial(trio_asgi.serve, app, config, listeners=[listener])
            servers.append(await nursery.start(serve))

        nursery.start_soon(start)
        await wait_all_tasks_blocked()
        t0 = now()
        client = Client(await listener.connect())  # queued in the listener, not accepted
        await client.request()
        await anyio.sleep(5.0)
        assert http_calls == []
        assert servers == []
        gate.set()
        response = await client.response()
        assert response.status == 200
        assert http_calls == [pytest.approx(t0 + 5.0)]
        assert response.at == pytest.approx(t0 + 5.0)
        servers[0].shutdown()


# --- modes ------------------------------------------------------------------------------------


async def test_lifespan_off_never_calls_the_app_with_a_lifespan_scope() -> None:
    app = LifespanApp()
    async with running(app, make_config(lifespan="off")) as srv:
        assert await fetch(srv) == b"hello /"
    assert app.events == []


async def returns_at_once(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await hello_app(scope, receive, send)


async def raises_on_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http", "no lifespan here"
    await hello_app(scope, receive, send)


@pytest.mark.parametrize("app", [returns_at_once, raises_on_lifespan])
async def test_auto_goes_on_without_lifespan_when_unsupported(
    caplog: pytest.LogCaptureFixture, app: Any
) -> None:
    # PEERS: an app that returns from the lifespan scope crashed Hypercorn's trio worker.
    caplog.set_level(logging.INFO, logger="trio_asgi")
    async with running(app, make_config(lifespan="auto")) as srv:
        assert await fetch(srv, "/x") == b"hello /x"
    assert any("unsupported" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("app", "why"),
    [(returns_at_once, "it returned"), (raises_on_lifespan, "AssertionError: no lifespan here")],
)
async def test_on_fails_when_unsupported(app: Any, why: str) -> None:
    failure = await serve_until_failure(app, lifespan="on")
    assert "does not support lifespan" in str(failure)
    assert why in str(failure)


# --- failures ---------------------------------------------------------------------------------


class ScriptedLifespan:
    """A lifespan handler that sends the given messages in answer to startup."""

    def __init__(self, *answers: Message, then_wait: bool = False) -> None:
        self.answers = answers
        self.then_wait = then_wait
        self.errors: list[BaseException] = []
        self.cancelled = False
        self.http_calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.http_calls += 1
            await hello_app(scope, receive, send)
            return
        await receive()
        try:
            for answer in self.answers:
                try:
                    await send(answer)
                except ASGIProtocolError as exc:
                    self.errors.append(exc)
                    raise
            if self.then_wait:
                await receive()  # never answered: the server must still end this call
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise


@pytest.mark.parametrize("mode", ["auto", "on"])
async def test_startup_failed_raises_with_the_apps_message(mode: str) -> None:
    app = ScriptedLifespan(
        {"type": "lifespan.startup.failed", "message": "database unreachable"}, then_wait=True
    )
    t0 = now()
    failure = await serve_until_failure(app, lifespan=mode)
    assert "database unreachable" in str(failure)
    assert now() == pytest.approx(t0)  # at once, though the app then waits forever
    assert app.cancelled
    assert app.http_calls == 0


async def test_startup_failed_without_a_message() -> None:
    failure = await serve_until_failure(ScriptedLifespan({"type": "lifespan.startup.failed"}))
    assert "startup failed" in str(failure)


async def hang(scope: Scope) -> None:
    await anyio.sleep_forever()


async def test_startup_timeout() -> None:
    app = LifespanApp(on_startup=hang)
    t0 = now()
    failure = await serve_until_failure(app, lifespan="on", timeout_lifespan_startup=7.0)
    assert "timed out" in str(failure)
    assert now() - t0 == pytest.approx(7.0)
    assert app.times("cancelled") == [pytest.approx(t0 + 7.0)]


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "lifespan.shutdown.complete"},
        {"type": "lifespan.startup.bogus"},
        {"no": "type"},
    ],
)
@pytest.mark.parametrize("mode", ["auto", "on"])
async def test_invalid_message_order_fails_startup(mode: str, bad: Message) -> None:
    app = ScriptedLifespan(bad)
    failure = await serve_until_failure(app, lifespan=mode)
    assert len(app.errors) == 1  # send() raised it to the app first
    assert isinstance(app.errors[0], ASGIProtocolError)
    assert app.http_calls == 0
    assert "lifespan" in str(failure)


async def test_second_startup_complete_is_refused_but_serving_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = ScriptedLifespan(
        {"type": "lifespan.startup.complete"}, {"type": "lifespan.startup.complete"}
    )
    async with running(app, make_config(lifespan="on")) as srv:
        assert await fetch(srv) == b"hello /"
    assert [type(e) for e in app.errors] == [ASGIProtocolError]
    assert any("Exception in 'lifespan' protocol" in r.getMessage() for r in caplog.records)


async def test_lifespan_call_raising_while_serving_is_logged_and_serving_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await hello_app(scope, receive, send)
            return
        await receive()
        await send({"type": "lifespan.startup.complete"})
        raise RuntimeError("lifespan task died")

    async with running(app, make_config(lifespan="on")) as srv:
        assert await fetch(srv) == b"hello /"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert "lifespan task died" in str(errors[0].exc_info[1])


async def test_shutdown_failed_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "flush failed"})

    async with running(app, make_config(lifespan="on")):
        pass
    assert any("flush failed" in r.getMessage() for r in caplog.records)


async def test_shutdown_timeout_is_logged_and_bounded(caplog: pytest.LogCaptureFixture) -> None:
    app = LifespanApp(on_shutdown=anyio.sleep_forever)
    async with running(app, make_config(lifespan="on", timeout_lifespan_shutdown=2.5)) as srv:
        t0 = now()
        srv.server.shutdown()
        assert await srv.wait_stopped() - t0 == pytest.approx(2.5)
    assert app.times("cancelled") == [pytest.approx(t0 + 2.5)]
    assert any("timed out" in r.getMessage() for r in caplog.records)


# --- state ------------------------------------------------------------------------------------


async def test_state_is_a_shallow_copy_per_request() -> None:
    seen: list[dict[str, Any]] = []

    async def startup(scope: Scope) -> None:
        scope["state"]["greeting"] = "hi"
        scope["state"]["shared"] = []

    async def http(scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["state"]
        seen.append(dict(state))
        state["mine"] = scope["path"]  # not seen by the next request
        state["shared"].append(scope["path"])  # the same list: a shallow copy
        await respond(send)

    async with running(LifespanApp(http, on_startup=startup), make_config(lifespan="on")) as srv:
        await fetch(srv, "/1")
        await fetch(srv, "/2")
    assert seen[0] == {"greeting": "hi", "shared": ["/1", "/2"]}
    assert seen[1] == {"greeting": "hi", "shared": ["/1", "/2"]}
    assert "mine" not in seen[1]
    assert seen[0]["shared"] is seen[1]["shared"]


async def test_state_is_empty_without_lifespan() -> None:
    states: list[dict[str, Any]] = []

    async def http(scope: Scope, receive: Receive, send: Send) -> None:
        states.append(scope["state"])
        scope["state"]["x"] = 1
        await respond(send)

    async with running(http, make_config(lifespan="off")) as srv:
        await fetch(srv)
        await fetch(srv)
    assert states == [{"x": 1}, {"x": 1}]
    assert states[0] is not states[1]
