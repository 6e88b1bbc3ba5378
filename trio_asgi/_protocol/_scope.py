"""Building ASGI scopes from parsed requests (no I/O)."""

from __future__ import annotations

from typing import Any

from ._http11 import RequestHead
from ._target import decode_path

#: The ASGI HTTP/WebSocket spec version we implement in full: 2.1 (``headers`` in
#: ``websocket.accept``), 2.2 (``server`` as ``[path, None]`` on unix sockets), 2.3
#: (``reason`` in ``websocket.close``), 2.4 (``send()`` after a disconnect raises an
#: OSError) and 2.5 (``reason`` in ``websocket.disconnect``).
HTTP_SPEC_VERSION = "2.5"
LIFESPAN_SPEC_VERSION = "2.0"

_HTTP_ASGI = {"version": "3.0", "spec_version": HTTP_SPEC_VERSION}


def http_scope(
    request: RequestHead,
    *,
    scheme: str,
    root_path: str,
    client: tuple[str, int] | None,
    server: tuple[str, int | None] | None,
    state: dict[str, Any],
    extensions: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The scope for one HTTP request. ``path`` and ``raw_path`` include ``root_path``."""
    raw_path = request.raw_path
    if root_path and raw_path != b"*":
        path = root_path + decode_path(raw_path)
        raw_path = root_path.encode("utf-8") + raw_path
    else:
        path = decode_path(raw_path)
    return {
        "type": "http",
        "asgi": _HTTP_ASGI.copy(),
        "http_version": request.http_version,
        "method": request.method,
        "scheme": scheme,
        "path": path,
        "raw_path": raw_path,
        "query_string": request.query_string,
        "root_path": root_path,
        "headers": request.headers,
        "client": client,
        "server": server,
        "state": state.copy(),
        "extensions": extensions,
    }


_WS_EXTENSIONS: dict[str, dict[str, Any]] = {"websocket.http.response": {}}


def websocket_scope(
    request: RequestHead,
    *,
    scheme: str,
    root_path: str,
    client: tuple[str, int] | None,
    server: tuple[str, int | None] | None,
    state: dict[str, Any],
    subprotocols: tuple[str, ...],
) -> dict[str, Any]:
    """The scope for one WebSocket: the HTTP scope's fields, ``ws``/``wss`` and subprotocols."""
    scope = http_scope(
        request,
        scheme="wss" if scheme == "https" else "ws",
        root_path=root_path,
        client=client,
        server=server,
        state=state,
        extensions={name: {} for name in _WS_EXTENSIONS},
    )
    scope["type"] = "websocket"
    del scope["method"]
    scope["subprotocols"] = list(subprotocols)
    return scope
