"""The WSGI app the WSGI rows of the bench run, on every WSGI-capable server.

Routes:

- ``/``: hello world, 13 bytes with a Content-Length.
- ``/upload``: a POST body read in 64 KiB pieces (``wsgi.input.read``), answered with
  its length: the upload path.
- ``/download``: 1 MiB as 16 chunks of 64 KiB from a generator, no Content-Length:
  the streamed download path.

``app`` is the WSGI callable (trio-asgi ``--interface wsgi``, Gunicorn's gthread
worker); ``asgi_app`` is the same app behind a2wsgi, for Uvicorn. Every server gets
:data:`THREADS` threads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

#: Threads for app calls on every server (trio-asgi --wsgi-threads, gunicorn --threads,
#: a2wsgi workers): the same for all, so the rows compare the servers.
THREADS = 8

HELLO = b"Hello, world!"
CHUNK = b"d" * (64 * 1024)
CHUNKS = 16  # 1 MiB

StartResponse = Callable[..., Any]


def _download() -> Iterator[bytes]:
    for _ in range(CHUNKS):
        yield CHUNK


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/upload":
        stream = environ["wsgi.input"]
        size = 0
        while piece := stream.read(64 * 1024):
            size += len(piece)
        body = str(size).encode()
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]
    if path == "/download":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _download()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]


def _asgi_app() -> Any:
    try:
        from a2wsgi import WSGIMiddleware
    except ImportError:  # the uvicorn-a2wsgi row then says "not installed"
        return None
    return WSGIMiddleware(app, workers=THREADS)


asgi_app = _asgi_app()
