"""Serving a WSGI app (PEP 3333): the ASGI 3 adapter, made once at load time.

Each HTTP request becomes one call on a bounded pool of daemon threads
(:mod:`trio_asgi._wsgi_threads`); the thread talks back to the event loop only to
pull a body chunk (``wsgi.input``) or to send a response chunk, each one call
through the request's :class:`~trio_asgi._wsgi_threads.Bridge`, run by the
request's own task, that returns once the chunk is received or handed to the
socket (:mod:`trio_asgi._wsgi_io`); the end of the response is sent by that task
once the thread is done. No task or thread per chunk, and no
buffer beyond one chunk each way.

The environ follows PEP 3333 and CGI: every ``str`` holds latin-1-decoded bytes;
``PATH_INFO`` is the percent-decoded path after ``SCRIPT_NAME`` (the root path);
request headers become ``HTTP_*`` (repeated ones joined with ``", "``; cookies with
``"; "``), except ``Content-Type`` and ``Content-Length``, and a header whose name
holds ``_`` is dropped, so ``X_Forwarded_For`` cannot pose as ``X-Forwarded-For``.

WebSocket requests are refused (403); the lifespan protocol is answered, and its
shutdown logs the app calls still running after the grace period.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote_to_bytes

from ._errors import ClientDisconnected
from ._types import Message, Receive, Scope, Send
from ._wsgi_io import ErrorStream, FileWrapper, InputStream, Responder, WSGIApp, call_app
from ._wsgi_threads import AppThreads, Bridge, default_thread_count

__all__ = ["WSGIAdapter", "build_environ"]

logger = logging.getLogger("trio_asgi")

_SPECIAL_HEADERS = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}
_DEFAULT_PORTS = {"http": "80", "https": "443"}


class WSGIAdapter:
    """An ASGI 3 app that runs the WSGI app ``app`` on ``threads`` threads."""

    __slots__ = ("app", "threads")

    def __init__(self, app: WSGIApp, threads: int | None = None) -> None:
        self.app = app
        self.threads = AppThreads(threads if threads is not None else default_thread_count())

    def __repr__(self) -> str:
        return f"WSGIAdapter({self.app!r}, threads={self.threads.size})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})  # a 403: WSGI has none
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def pull() -> tuple[bytes, bool]:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientDisconnected("the client disconnected before sending the whole body")
            return message.get("body", b""), message.get("more_body", False)

        async def push(
            head: tuple[int, list[tuple[bytes, bytes]]] | None, body: bytes, more: bool
        ) -> None:
            if head is not None:
                await send({"type": "http.response.start", "status": head[0], "headers": head[1]})
            await send({"type": "http.response.body", "body": body, "more_body": more})

        bridge = Bridge()

        def pull_in_thread() -> tuple[bytes, bool]:
            return bridge.call(pull)

        def push_in_thread(
            head: tuple[int, list[tuple[bytes, bytes]]] | None, body: bytes, more: bool
        ) -> None:
            bridge.call(push, head, body, more)

        environ = build_environ(scope, InputStream(pull_in_thread))
        responder = Responder(push_in_thread)
        head, last = await self.threads.run(bridge, call_app, self.app, environ, responder)
        await push(head, last, False)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.threads.busy:
                    logger.warning(
                        "%d WSGI app call(s) still running after the grace period; "
                        "abandoned: their threads end with the process",
                        self.threads.busy,
                    )
                await send({"type": "lifespan.shutdown.complete"})
                return


def build_environ(scope: Scope, body: InputStream) -> dict[str, Any]:
    """The PEP 3333 environ for an ASGI HTTP scope, with ``body`` as ``wsgi.input``."""
    scheme = scope.get("scheme", "http")
    root_path: str = scope.get("root_path", "")
    script_name = root_path.encode("utf-8")
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    path = unquote_to_bytes(raw_path)
    if script_name and path.startswith(script_name):
        path = path[len(script_name) :]
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name.decode("latin-1"),
        "PATH_INFO": path.decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": body,
        "wsgi.input_terminated": True,
        "wsgi.errors": ErrorStream(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
    }
    _add_headers(environ, scope.get("headers", ()))
    environ["SERVER_NAME"], environ["SERVER_PORT"] = _server_name(scope, environ, scheme)
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
        environ["REMOTE_PORT"] = str(client[1])
    return environ


def _add_headers(environ: dict[str, Any], headers: Any) -> None:
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if "_" in name:
            continue
        key = _SPECIAL_HEADERS.get(name) or "HTTP_" + name.upper().replace("-", "_")
        if key in environ:
            environ[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
        else:
            environ[key] = value


def _server_name(scope: Scope, environ: dict[str, Any], scheme: str) -> tuple[str, str]:
    server = scope.get("server")
    if server and server[1] is not None:
        return str(server[0]), str(server[1])
    # A unix socket: the Host header says what the client asked for.
    host: str = environ.get("HTTP_HOST", "")
    name, sep, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if not sep or not port.isdigit():
        name, port = host, _DEFAULT_PORTS.get(scheme, "80")
    return name or "localhost", port
