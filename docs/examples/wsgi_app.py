"""A plain WSGI app (PEP 3333) that streams both ways: run it with ``trio-asgi wsgi_app:app``.

- ``POST /upper``: the request body, upper-cased, line by line, as it arrives.
- ``GET /count``: the numbers 0 to 9, one per line, from a generator.
- anything else: a short greeting.

trio-asgi detects a two-argument callable as WSGI; ``--interface wsgi`` says so
explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any


def _upper_lines(environ: dict[str, Any]) -> Iterator[bytes]:
    # wsgi.input is read on demand: each line is pulled from the client as needed.
    for line in environ["wsgi.input"]:
        yield line.upper()


def _count() -> Iterator[bytes]:
    for number in range(10):
        yield b"%d\n" % number


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/upper" and environ["REQUEST_METHOD"] == "POST":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _upper_lines(environ)
    if path == "/count":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _count()
    body = f"Hello from WSGI at {environ['SCRIPT_NAME']}{path}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
