"""WSGI frameworks end to end, on trio and asyncio: Flask, and Django's WSGI handler.

Both are detected as WSGI (a two-argument callable) with the default ``interface``,
served on a bounded thread pool over a real socket. Django in WSGI mode runs on trio
too, which its ASGI handler cannot (see test_frameworks_django.py).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator

import anyio
import httpx
import pytest
from flask import Flask, Response, abort, request, stream_with_context
from frameworks_helpers import serve_app

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_project.settings")

pytestmark = pytest.mark.anyio

flask_app = Flask(__name__)
STREAM_GATE = threading.Event()


@flask_app.get("/hello/<name>")
def hello(name: str) -> str:
    return f"hello {name} from {request.path} via {request.script_root or '/'}"


@flask_app.post("/echo")
def echo() -> Response:
    payload = request.get_json()
    return flask_app.json.response({"got": payload, "length": request.content_length})


@flask_app.post("/upload")
def upload() -> dict[str, object]:
    file = request.files["file"]
    return {"name": file.filename, "size": len(file.read()), "field": request.form["field"]}


@flask_app.get("/stream")
def stream() -> Response:
    @stream_with_context
    def generate() -> Iterator[str]:
        yield "first\n"
        STREAM_GATE.wait(10)  # sent only after the test has read "first"
        yield "second\n"

    return Response(generate(), mimetype="text/plain")


@flask_app.get("/missing")
def missing() -> str:
    abort(404)


@flask_app.get("/boom")
def boom() -> str:
    raise RuntimeError("boom")


async def test_flask(caplog: pytest.LogCaptureFixture) -> None:
    async with serve_app(flask_app, root_path="/app") as live, httpx.AsyncClient() as client:
        response = await client.get(f"{live.url}/hello/w%C3%B6rld")
        assert response.text == "hello wörld from /hello/wörld via /app"
        response = await client.post(f"{live.url}/echo", json={"a": [1, 2]})
        assert response.json() == {"got": {"a": [1, 2]}, "length": 11}
        files = {"file": ("f.bin", b"\0" * 300_000)}
        response = await client.post(f"{live.url}/upload", files=files, data={"field": "v"})
        assert response.json() == {"name": "f.bin", "size": 300_000, "field": "v"}
        assert (await client.get(f"{live.url}/missing")).status_code == 404
        assert (await client.get(f"{live.url}/boom")).status_code == 500
        STREAM_GATE.clear()
        async with await anyio.connect_tcp(live.host, live.port) as stream:
            await stream.send(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""
            while b"first\n" not in received:  # the first chunk comes before the second exists
                received += await stream.receive()
            assert b"second" not in received
            STREAM_GATE.set()
            while not received.endswith(b"0\r\n\r\n"):
                received += await stream.receive()
            assert b"second\n" in received
    assert any("boom" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


async def test_django_wsgi() -> None:
    from django_project.wsgi import application

    async with serve_app(application) as live, httpx.AsyncClient(base_url=live.url) as client:
        response = await client.get("/sync")
        assert response.status_code == 200
        response = await client.post("/echo", content=json.dumps({"x": "é"}))
        assert response.status_code == 201
        assert response.json()["got"] == {"x": "é"}
        assert (await client.get("/nowhere")).status_code == 404
        assert (await client.get("/boom")).status_code == 500
