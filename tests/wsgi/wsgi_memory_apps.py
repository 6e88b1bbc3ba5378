"""The streaming echo the memory test serves in a subprocess (``--interface wsgi``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def echo(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    """Each chunk of the upload goes back as soon as it is read."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    stream = environ["wsgi.input"]
    while chunk := stream.read(65536):
        yield chunk
