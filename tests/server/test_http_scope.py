"""The scope an app gets, and the headers the server adds, over real sockets."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import SocketAttribute

pytestmark = pytest.mark.anyio

TIMEOUT = 5


async def send_text(send: Any, body: bytes, status: int = 200, headers: Any = ()) -> None:
    """A whole response with a Content-Length."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Any) -> bytes:
    """The whole request body."""
    body = b""
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        body += message["body"]
        if not message.get("more_body", False):
            return body


# --- default headers ------------------------------------------------------------------------


async def test_date_and_server_headers_by_default(make_request, respond_once):
    async def app(scope, receive, send):
        await send_text(send, b"x")

    response = await respond_once(app, make_request("/"))
    assert len(response.header_all(b"date")) == 1
    assert response.header(b"date").endswith(b" GMT")
    assert response.header(b"server").startswith(b"trio-asgi")


async def test_app_server_and_date_headers_are_not_duplicated(make_request, respond_once):
    async def app(scope, receive, send):
        headers = [(b"Server", b"mine"), (b"Date", b"Thu, 01 Jan 1970 00:00:00 GMT")]
        await send_text(send, b"x", headers=headers)

    response = await respond_once(app, make_request("/"))
    assert response.header_all(b"server") == [b"mine"]
    assert response.header_all(b"date") == [b"Thu, 01 Jan 1970 00:00:00 GMT"]


async def test_server_and_date_headers_can_be_turned_off(make_request, respond_once):
    async def app(scope, receive, send):
        await send_text(send, b"x")

    response = await respond_once(app, make_request("/"), server_header=False, date_header=False)
    assert response.header(b"server") is None
    assert response.header(b"date") is None


async def test_configured_default_headers(run_server, connect, make_request):
    async def app(scope, receive, send):
        await send_text(send, b"x")

    with anyio.fail_after(TIMEOUT):
        async with run_server(app, headers=(("x-a", "b"), ("X-Frame-Options", "DENY"))) as server:
            client = await connect(server)
            await client.send(make_request("/"))
            response = await client.read_response()
    assert response.header_all(b"x-a") == [b"b"]
    assert response.header(b"x-frame-options") == b"DENY"


# --- the scope ------------------------------------------------------------------------------


async def test_http_scope_fields(run_server, connect):
    scopes: list[dict[str, Any]] = []

    async def app(scope, receive, send):
        scopes.append(scope)
        await send_text(send, b"x")

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(
                b"GET /caf%C3%A9/a%2Fb/%FF?q=%20x HTTP/1.1\r\nHost: test\r\n"
                b"X-Dup: one\r\nAccept: */*\r\nX-Dup: two\r\n\r\n"
            )
            await client.read_response()
            client_address = client.stream.extra(SocketAttribute.local_address)
            port = int(server.addresses[0].rpartition(":")[2])
    (scope,) = scopes
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["asgi"]["spec_version"] in ("2.3", "2.4", "2.5")
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/café/a/b/\ufffd"
    assert scope["raw_path"] == b"/caf%C3%A9/a%2Fb/%FF"
    assert scope["query_string"] == b"q=%20x"
    assert scope["root_path"] == ""
    assert list(scope["headers"]) == [
        (b"host", b"test"),
        (b"x-dup", b"one"),
        (b"accept", b"*/*"),
        (b"x-dup", b"two"),
    ]
    assert list(scope["client"]) == [client_address[0], client_address[1]]
    assert list(scope["server"]) == ["127.0.0.1", port]
    assert scope["state"] == {}
    assert isinstance(scope["extensions"], dict)
    assert "http.response.trailers" not in scope["extensions"]


async def test_scope_without_query_and_method_case(run_server, connect):
    scopes: list[dict[str, Any]] = []

    async def app(scope, receive, send):
        scopes.append(scope)
        await read_body(receive)
        await send_text(send, b"x")

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(b"DELETE /plain HTTP/1.1\r\nHost: test\r\n\r\n")
            await client.read_response()
    (scope,) = scopes
    assert scope["method"] == "DELETE"
    assert scope["query_string"] == b""
    assert scope["path"] == "/plain"


async def test_root_path_prefixes_path(run_server, connect, make_request):
    scopes: list[dict[str, Any]] = []

    async def app(scope, receive, send):
        scopes.append(scope)
        await send_text(send, b"x")

    with anyio.fail_after(TIMEOUT):
        async with run_server(app, root_path="/api") as server:
            client = await connect(server)
            await client.send(make_request("/items?x=1"))
            await client.read_response()
    (scope,) = scopes
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/items"
    assert scope["query_string"] == b"x=1"


async def test_trailers_extension_advertised_when_client_accepts_trailers(
    run_server, connect, make_request
):
    extensions: list[dict[str, Any]] = []

    async def app(scope, receive, send):
        extensions.append(scope["extensions"])
        await send_text(send, b"x")

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(make_request("/", headers=[("TE", "trailers")]))
            await client.read_response()
    assert "http.response.trailers" in extensions[0]


async def test_state_is_copied_per_request(run_server, connect, make_request):
    seen: list[dict[str, Any]] = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["shared"] = "from-startup"
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        seen.append(dict(scope["state"]))
        scope["state"]["mutated"] = scope["path"]
        await send_text(send, b"x")

    with anyio.fail_after(TIMEOUT):
        async with run_server(app, lifespan="on") as server:
            client = await connect(server)
            await client.send(make_request("/one"))
            await client.read_response()
            await client.send(make_request("/two"))
            await client.read_response()
    assert seen == [{"shared": "from-startup"}, {"shared": "from-startup"}]


async def test_unix_socket(run_server):
    scopes: list[dict[str, Any]] = []

    async def app(scope, receive, send):
        scopes.append(scope)
        await send_text(send, b"over unix")

    directory = tempfile.mkdtemp(prefix="trio-asgi-")
    path = os.path.join(directory, "s.sock")
    try:
        with anyio.fail_after(TIMEOUT):
            async with run_server(app, bind=(f"unix:{path}",)) as server:
                assert server.addresses == (f"unix:{path}",)
                stream = await anyio.connect_unix(path)
                async with stream:
                    await stream.send(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
                    data = b""
                    while not data.endswith(b"over unix"):
                        data += await stream.receive()
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        (scope,) = scopes
        assert list(scope["server"]) == [path, None]
        assert scope["client"] is None
        assert not os.listdir(directory)  # the socket file is removed at shutdown
    finally:
        shutil.rmtree(directory)


async def test_httpx_round_trip_with_query_and_json(run_server, url):
    async def app(scope, receive, send):
        body = await read_body(receive)
        answer = b'{"q": "%s", "len": %d}' % (scope["query_string"], len(body))
        await send_text(send, answer, headers=[(b"content-type", b"application/json")])

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server, httpx.AsyncClient() as http:
            response = await http.put(url(server) + "/x?a=1", content=b"12345")
    assert response.json() == {"q": "a=1", "len": 5}


async def test_app_headers_win_over_configured_default_headers(run_server, connect, make_request):
    async def app(scope, receive, send):
        await send_text(send, b"x", headers=[(b"X-A", b"from-app")])

    with anyio.fail_after(TIMEOUT):
        async with run_server(app, headers=(("x-a", "from-config"), ("x-b", "c"))) as server:
            client = await connect(server)
            await client.send(make_request("/"))
            response = await client.read_response()
    assert response.header_all(b"x-a") == [b"from-app"]
    assert response.header_all(b"x-b") == [b"c"]
