"""The built-in demo app, served by ``trio-asgi`` when no app is named.

Plain ASGI 3, no framework, and only :mod:`anyio` for sleeping, so it runs on any
event loop. Routes (all under ``root_path``):

- ``GET /``: one HTML page (inline CSS and JS) exercising the routes below.
- ``GET /hello``: a small JSON response.
- ``GET /events?count=10&interval=0.5``: server-sent events, a counter, then ``done``.
- ``POST /echo``: the request body streamed back.
- ``/ws``: WebSocket echo (text and bytes).
- ``GET /favicon.ico``: the page's icon (an SVG), which browsers ask for on their own.

Unknown paths get 404, known paths with the wrong method 405. Lifespan is supported.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anyio

from ._types import ASGIApp, Receive, Scope, Send

_MAX_EVENTS = 1000
_MAX_INTERVAL = 10.0


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The demo ASGI app."""
    kind = scope["type"]
    if kind == "lifespan":
        await _lifespan(scope, receive, send)
        return
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :] or "/"
    if kind == "websocket":
        if path == "/ws":
            await _websocket_echo(receive, send)
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": "unknown path"})
        return
    route = _ROUTES.get(path)
    if route is None:
        await _text(send, 404, "Not Found\n")
        return
    handler = route.get(scope["method"])
    if handler is None:
        allow = ", ".join(route).encode()
        await _text(send, 405, "Method Not Allowed\n", [(b"allow", allow)])
        return
    await handler(scope, receive, send)


async def _lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            state = scope.get("state")
            if state is not None:
                state["demo_started"] = time.time()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _text(
    send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _respond(send, status, b"text/plain; charset=utf-8", text.encode(), headers)


async def _respond(
    send: Send,
    status: int,
    content_type: bytes,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    head = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": head + (headers or [])})
    await send({"type": "http.response.body", "body": body})


async def _page(scope: Scope, receive: Receive, send: Send) -> None:
    # The page finds its routes under root_path; JSON-encoded, with "<" escaped, so
    # nothing in it can end the <script> element.
    base = json.dumps(scope.get("root_path", "")).replace("<", "\\u003c")
    body = _PAGE.replace("__BASE__", base).encode()
    await _respond(send, 200, b"text/html; charset=utf-8", body, [(b"cache-control", b"no-store")])


async def _hello(scope: Scope, receive: Receive, send: Send) -> None:
    state = scope.get("state") or {}
    started = state.get("demo_started")
    data: dict[str, Any] = {
        "message": "Hello from trio-asgi!",
        "http_version": scope.get("http_version"),
        "client": list(scope["client"]) if scope.get("client") else None,
        "uptime": round(time.time() - started, 3) if started is not None else None,
    }
    await _respond(send, 200, b"application/json", json.dumps(data).encode())


def _query_number(scope: Scope, name: str, default: float, maximum: float) -> float:
    for part in scope.get("query_string", b"").decode("latin-1").split("&"):
        key, _, value = part.partition("=")
        if key == name:
            try:
                number = float(value)
            except ValueError:
                return default
            return min(max(number, 0.0), maximum)
    return default


async def _events(scope: Scope, receive: Receive, send: Send) -> None:
    count = int(_query_number(scope, "count", 10, _MAX_EVENTS))
    interval = _query_number(scope, "interval", 0.5, _MAX_INTERVAL)
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    async with anyio.create_task_group() as tg:
        # receive() returns http.disconnect when the client leaves: stop streaming then.
        tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
        try:
            await _stream_events(send, count, interval)
        except OSError:
            pass  # send() raises an OSError once the client is gone: nothing left to do
        tg.cancel_scope.cancel()


async def _stream_events(send: Send, count: int, interval: float) -> None:
    for n in range(1, count + 1):
        event = f"id: {n}\ndata: {json.dumps({'count': n, 'of': count})}\n\n"
        await send({"type": "http.response.body", "body": event.encode(), "more_body": True})
        if n < count:
            await anyio.sleep(interval)
    # A final named event, so the page closes its EventSource instead of reconnecting.
    await send({"type": "http.response.body", "body": b"event: done\ndata: bye\n\n"})


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    # Streamed: each body chunk goes back as it arrives, so memory stays flat.
    # The first receive() comes before the response starts, so 100-continue works.
    message = await receive()
    if message["type"] == "http.disconnect":
        return
    content_type = b"application/octet-stream"
    headers: list[tuple[bytes, bytes]] = []
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length":
            headers.append((b"content-length", value))
    headers.append((b"content-type", content_type))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    while True:
        more = message.get("more_body", False)
        await send(
            {"type": "http.response.body", "body": message.get("body", b""), "more_body": more}
        )
        if not more:
            return
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _favicon(scope: Scope, receive: Receive, send: Send) -> None:
    # Browsers ask for /favicon.ico on their own; a 404 would be an error in their console.
    await _respond(send, 200, b"image/svg+xml", _FAVICON, [(b"cache-control", b"max-age=86400")])


async def _upgrade_required(scope: Scope, receive: Receive, send: Send) -> None:
    await _text(send, 426, "Connect with a WebSocket client.\n", [(b"upgrade", b"websocket")])


async def _websocket_echo(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif kind == "websocket.receive":
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
        elif kind == "websocket.disconnect":
            return


_ROUTES: dict[str, dict[str, ASGIApp]] = {
    "/": {"GET": _page, "HEAD": _page},
    "/hello": {"GET": _hello, "HEAD": _hello},
    "/events": {"GET": _events},
    "/echo": {"POST": _echo},
    "/favicon.ico": {"GET": _favicon, "HEAD": _favicon},
    "/ws": {"GET": _upgrade_required},
}

#: The page's icon: a white "t" on blue, 16 by 16.
_FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<rect width="16" height="16" rx="3" fill="#2b5797"/>'
    b'<path d="M6 2.5v8a2 2 0 0 0 2 2h3M3.5 6h7" stroke="#fff" stroke-width="2" fill="none"/>'
    b"</svg>"
)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>trio-asgi demo</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto;
         padding: 0 1rem; color: #1d1d1f; background: #fafafa; }
  h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
  section { background: #fff; border: 1px solid #ddd; border-radius: 8px;
            padding: 0.8rem 1.2rem; margin: 1rem 0; }
  h2 { font-size: 1.1rem; margin: 0.2rem 0 0.6rem; }
  pre, ol { background: #f3f3f3; border-radius: 4px; padding: 0.5rem 0.8rem;
            max-height: 17rem; overflow: auto; margin: 0.5rem 0; }
  ol { padding-left: 2.2rem; }
  code { font-size: 0.9em; }
  button { font: inherit; padding: 0.2rem 0.8rem; cursor: pointer; }
  input { font: inherit; padding: 0.2rem 0.4rem; width: 20rem; max-width: 60%; }
  .status { color: #555; font-size: 0.9rem; }
</style>
</head>
<body>
<h1>trio-asgi</h1>
<p>This page is the built-in demo app. Run your own with
<code>trio-asgi module:app</code>.</p>

<section>
  <h2>1. A normal response: <code>GET /hello</code></h2>
  <button id="hello-button">Fetch again</button>
  <pre id="hello-result">loading...</pre>
</section>

<section>
  <h2>2. A streamed response: server-sent events from <code>GET /events</code></h2>
  <button id="events-start">Start again</button>
  <span id="events-status" class="status">starting...</span>
  <ol id="events-log"></ol>
</section>

<section>
  <h2>3. A WebSocket echo: <code>/ws</code></h2>
  <div>
    <input id="ws-input" value="Hello, WebSocket!" aria-label="message">
    <button id="ws-send">Send</button>
    <button id="ws-close">Close</button>
    <button id="ws-connect">Reconnect</button>
  </div>
  <p id="ws-status" class="status">connecting...</p>
  <ol id="ws-log"></ol>
</section>

<script>
"use strict";
const BASE = __BASE__;
const $ = (id) => document.getElementById(id);

function addLine(list, text) {
  const item = document.createElement("li");
  item.textContent = text;
  list.appendChild(item);
  list.scrollTop = list.scrollHeight;
}

async function fetchHello() {
  const out = $("hello-result");
  out.textContent = "loading...";
  try {
    const response = await fetch(BASE + "/hello");
    const data = await response.json();
    out.textContent = response.status + " " + JSON.stringify(data, null, 2);
  } catch (error) {
    out.textContent = "failed: " + error;
  }
}

let source = null;
function startEvents() {
  if (source) source.close();
  $("events-log").replaceChildren();
  $("events-status").textContent = "streaming...";
  source = new EventSource(BASE + "/events");
  source.onmessage = (event) => {
    const data = JSON.parse(event.data);
    addLine($("events-log"), "event " + data.count + " of " + data.of);
  };
  source.addEventListener("done", () => {
    source.close();
    $("events-status").textContent = "done";
  });
  source.onerror = () => {
    source.close();
    $("events-status").textContent = "connection lost";
  };
}

let socket = null;
function connectSocket() {
  if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + BASE + "/ws");
  socket = ws;
  $("ws-status").textContent = "connecting...";
  ws.onopen = () => { $("ws-status").textContent = "open"; };
  ws.onmessage = (event) => { addLine($("ws-log"), "echo: " + event.data); };
  ws.onclose = (event) => {
    if (socket !== ws) return;
    $("ws-status").textContent = "closed (code " + event.code + ")";
  };
}

function sendMessage() {
  const text = $("ws-input").value;
  if (!socket || socket.readyState !== WebSocket.OPEN) {
    $("ws-status").textContent = "not connected";
    return;
  }
  socket.send(text);
  addLine($("ws-log"), "sent: " + text);
}

$("hello-button").addEventListener("click", fetchHello);
$("events-start").addEventListener("click", startEvents);
$("ws-send").addEventListener("click", sendMessage);
$("ws-input").addEventListener("keydown", (event) => {
  if (event.key === "Enter") sendMessage();
});
$("ws-close").addEventListener("click", () => { if (socket) socket.close(1000, "bye"); });
$("ws-connect").addEventListener("click", connectSocket);

fetchHello();
startEvents();
connectSocket();
</script>
</body>
</html>
"""
