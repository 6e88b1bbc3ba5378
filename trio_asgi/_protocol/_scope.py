"""Building ASGI scopes from parsed requests (no I/O)."""

from __future__ import annotations

from typing import Any

from ._http11 import RequestHead
from ._target import decode_path

#: The ASGI HTTP/WebSocket spec version we implement in full: 2.2 (unix ``server``)
#: and 2.4 (``send()`` after disconnect raises OSError) hold for HTTP; the WebSocket
#: items (2.1 accept headers, 2.3 close reason, 2.5 disconnect reason) come with it.
HTTP_SPEC_VERSION = "2.4"
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
