"""An app that uses the ASGI extensions trio-asgi offers, each only where advertised.

Run it with ``trio-asgi extensions_app:app`` next to a file ``report.pdf``, or set
``FILE``. ``/file`` sends the file with ``http.response.pathsend`` (``os.sendfile``
on plain TCP); ``/part`` sends bytes 100 to 199 of it with
``http.response.zerocopysend``; ``/`` sends early hints, then the page; ``/tls``
shows the ``tls`` extension on an HTTPS connection.
"""

from __future__ import annotations

import json
import os
from typing import Any

FILE = os.path.abspath(os.environ.get("FILE", "report.pdf"))  # pathsend wants it absolute


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    extensions = scope["extensions"]
    path = scope["path"]
    if path == "/file" and "http.response.pathsend" in extensions:
        # With a Content-Length the server holds the head until the file is open, so a
        # missing file is a clean 500 (without one, the head of a stream goes out first).
        length = str(os.stat(FILE).st_size).encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]}
        )
        await send({"type": "http.response.pathsend", "path": FILE})
    elif path == "/part" and "http.response.zerocopysend" in extensions:
        await send(
            {"type": "http.response.start", "status": 206, "headers": [(b"content-length", b"100")]}
        )
        with open(FILE, "rb") as file:  # noqa: ASYNC230 - opening does not wait; the app closes it
            await send(
                {"type": "http.response.zerocopysend", "file": file, "offset": 100, "count": 100}
            )
    elif path == "/tls":
        body = json.dumps(extensions.get("tls")).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    else:
        if "http.response.early_hint" in extensions:
            links = [b"</style.css>; rel=preload; as=style"]
            await send({"type": "http.response.early_hint", "links": links})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html")],
            }
        )
        await send({"type": "http.response.body", "body": b"<link rel=stylesheet href=/style.css>"})
