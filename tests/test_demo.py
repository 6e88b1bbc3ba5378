"""The built-in demo app, called directly through its ASGI interface."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from trio_asgi._demo import app

Message = dict[str, Any]


def http_scope(
    method: str,
    path: str,
    *,
    query: bytes = b"",
    root_path: str = "",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.5"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "query_string": query,
        "root_path": root_path,
        "headers": headers or [],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def call(
    scope: dict[str, Any],
    inbox: list[Message],
    on_send: Callable[[Message], Awaitable[None]] | None = None,
) -> list[Message]:
    """Run the app once; ``receive`` hands out ``inbox``, then blocks like a quiet client."""
    sent: list[Message] = []
    pending = list(inbox)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)
        if on_send is not None:
            await on_send(message)

    await app(scope, receive, send)
    return sent


REQUEST = {"type": "http.request", "body": b"", "more_body": False}


def response(sent: list[Message]) -> tuple[int, dict[bytes, bytes], bytes]:
    assert sent[0]["type"] == "http.response.start"
    assert all(m["type"] == "http.response.body" for m in sent[1:])
    assert not sent[-1].get("more_body", False)
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return sent[0]["status"], dict(sent[0]["headers"]), body


async def test_lifespan() -> None:
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    sent = await call(scope, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert isinstance(scope["state"]["demo_started"], float)


async def test_page_has_the_ids_the_browser_test_uses() -> None:
    status, headers, body = response(await call(http_scope("GET", "/"), [REQUEST]))
    assert status == 200
    assert headers[b"content-type"] == b"text/html; charset=utf-8"
    assert int(headers[b"content-length"]) == len(body)
    page = body.decode()
    for element in (
        "hello-result",
        "events-log",
        "events-status",
        "ws-input",
        "ws-send",
        "ws-log",
        "ws-close",
        "ws-status",
    ):
        assert f'id="{element}"' in page


async def test_page_loads_nothing_from_elsewhere() -> None:
    page = response(await call(http_scope("GET", "/"), [REQUEST]))[2].decode()
    assert not re.search(r"\b(src|href)=", page)
    assert not re.search(r"https?://", page)
    assert "@import" not in page


async def test_page_uses_root_path_safely() -> None:
    scope = http_scope("GET", "/", root_path="/demo</script>")
    page = response(await call(scope, [REQUEST]))[2].decode()
    assert 'const BASE = "/demo\\u003c/script>";' in page
    assert page.count("</script>") == 1


async def test_hello() -> None:
    scope = http_scope("GET", "/hello")
    scope["state"] = {"demo_started": 0.0}
    status, headers, body = response(await call(scope, [REQUEST]))
    assert (status, headers[b"content-type"]) == (200, b"application/json")
    data = json.loads(body)
    assert data["message"] == "Hello from trio-asgi!"
    assert data["client"] == ["127.0.0.1", 5000]
    assert data["http_version"] == "1.1"
    assert data["uptime"] > 0


async def test_routes_under_root_path() -> None:
    scope = http_scope("HEAD", "/hello", root_path="/demo")
    assert response(await call(scope, [REQUEST]))[0] == 200


async def test_unknown_path_is_404() -> None:
    assert response(await call(http_scope("GET", "/nope"), [REQUEST]))[:1] == (404,)


async def test_wrong_method_is_405_with_allow() -> None:
    status, headers, _ = response(await call(http_scope("POST", "/hello"), [REQUEST]))
    assert (status, headers[b"allow"]) == (405, b"GET, HEAD")


async def test_plain_http_to_the_websocket_path() -> None:
    status, headers, _ = response(await call(http_scope("GET", "/ws"), [REQUEST]))
    assert (status, headers[b"upgrade"]) == (426, b"websocket")


def parse_events(body: bytes) -> list[dict[str, str]]:
    blocks = body.decode().strip().split("\n\n")
    return [dict(line.split(": ", 1) for line in block.splitlines()) for block in blocks]


async def test_events_stream_a_counter(autojump_clock: trio.abc.Clock) -> None:
    start = trio.current_time()
    sent = await call(http_scope("GET", "/events"), [REQUEST])
    status, headers, body = response(sent)
    assert (status, headers[b"content-type"]) == (200, b"text/event-stream")
    assert b"content-length" not in headers
    events = parse_events(body)
    assert [json.loads(e["data"])["count"] for e in events[:-1]] == list(range(1, 11))
    assert events[-1] == {"event": "done", "data": "bye"}
    # One event per message, half a second apart.
    assert len(sent) == 1 + 11
    assert trio.current_time() - start == pytest.approx(4.5)


async def test_events_count_and_interval_from_the_query(autojump_clock: trio.abc.Clock) -> None:
    start = trio.current_time()
    scope = http_scope("GET", "/events", query=b"x=1&count=3&interval=2")
    events = parse_events(response(await call(scope, [REQUEST]))[2])
    assert [e.get("id") for e in events] == ["1", "2", "3", None]
    assert trio.current_time() - start == pytest.approx(4.0)


async def test_events_ignore_bad_numbers(autojump_clock: trio.abc.Clock) -> None:
    start = trio.current_time()
    scope = http_scope("GET", "/events", query=b"count=many&interval=-1")
    assert len(parse_events(response(await call(scope, [REQUEST]))[2])) == 11
    assert trio.current_time() == start  # interval clamped to 0


async def test_events_stop_when_the_client_leaves(autojump_clock: trio.abc.Clock) -> None:
    left = trio.Event()

    async def on_send(message: Message) -> None:
        if message.get("body", b"").startswith(b"id: 2\n"):
            left.set()

    async def receive() -> Message:
        await left.wait()
        return {"type": "http.disconnect"}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        await on_send(message)

    await app(http_scope("GET", "/events"), receive, send)
    assert [m["body"][:5] for m in sent[1:]] == [b"id: 1", b"id: 2"]


async def test_events_end_quietly_when_send_fails(autojump_clock: trio.abc.Clock) -> None:
    async def on_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise ConnectionResetError("the client is gone")  # what our send() raises: an OSError

    sent = await call(http_scope("GET", "/events"), [REQUEST], on_send)
    assert len(sent) == 2


async def test_echo_streams_the_body_back() -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"11")]
    chunks = [
        {"type": "http.request", "body": b"hello ", "more_body": True},
        {"type": "http.request", "body": b"world", "more_body": False},
    ]
    sent = await call(http_scope("POST", "/echo", headers=headers), chunks)
    status, response_headers, body = response(sent)
    assert (status, body) == (200, b"hello world")
    assert response_headers == {b"content-type": b"text/plain", b"content-length": b"11"}
    assert len(sent) == 3  # streamed: one body message per request chunk


async def test_echo_without_content_type_or_length() -> None:
    sent = await call(http_scope("POST", "/echo"), [{"type": "http.request", "body": b"x"}])
    assert response(sent) == (200, {b"content-type": b"application/octet-stream"}, b"x")


async def test_echo_stops_on_disconnect() -> None:
    chunks = [
        {"type": "http.request", "body": b"a", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent = await call(http_scope("POST", "/echo"), chunks)
    assert [m.get("body") for m in sent[1:]] == [b"a"]
    assert (await call(http_scope("POST", "/echo"), [{"type": "http.disconnect"}])) == []


def ws_scope(path: str) -> dict[str, Any]:
    scope = http_scope("GET", path)
    scope.update(type="websocket", scheme="ws", subprotocols=[])
    del scope["method"]
    return scope


async def test_websocket_echo() -> None:
    inbox = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "hello"},
        {"type": "websocket.receive", "bytes": b"\x00\x01"},
        {"type": "websocket.receive", "text": ""},
        {"type": "websocket.disconnect", "code": 1000, "reason": ""},
    ]
    assert await call(ws_scope("/ws"), inbox) == [
        {"type": "websocket.accept"},
        {"type": "websocket.send", "text": "hello"},
        {"type": "websocket.send", "bytes": b"\x00\x01"},
        {"type": "websocket.send", "text": ""},
    ]


async def test_websocket_on_another_path_is_refused() -> None:
    sent = await call(ws_scope("/elsewhere"), [{"type": "websocket.connect"}])
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "unknown path"}]
