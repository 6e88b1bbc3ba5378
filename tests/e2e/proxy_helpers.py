"""Helpers for the tests that put a real nginx or HAProxy in front of trio-asgi.

* :func:`render`: a docs example config with its ports and paths replaced (each
  replacement must match, so the docs and the tests cannot drift apart silently).
* :func:`running`: ``async with running(argv, port, log)`` starts a foreground
  process, waits until it accepts connections on ``port`` (polled, with a deadline),
  and kills it on exit, whatever happened.
* :func:`who_app`: an app that answers with its scope's ``client`` and ``scheme``.
* :data:`CLIENT_HOST`: the address test clients connect *from* (127.0.0.2): not
  127.0.0.1, the trusted proxy, so the client is told apart from the proxy.

The module name is unique on purpose: ``tests/e2e`` is on ``sys.path``.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import anyio
import trio
import trustme

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "docs" / "examples"
CLIENT_HOST = "127.0.0.2"
#: How long a proxy may take to start listening (a busy CI box).
STARTUP_DEADLINE = 20.0
POLL_INTERVAL = 0.02


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def render(example: str, replacements: Mapping[str, str]) -> str:
    """The text of ``docs/examples/<example>`` with each key replaced (all must occur)."""
    text = (EXAMPLES / example).read_text()
    for old, new in replacements.items():
        assert old in text, f"{old!r} is no longer in docs/examples/{example}"
        text = text.replace(old, new)
    return text


async def _accepts(port: int) -> bool:
    try:
        stream = await anyio.connect_tcp("127.0.0.1", port)
    except OSError:
        return False
    await stream.aclose()
    return True


@asynccontextmanager
async def running(argv: Sequence[str], port: int, log: IO[bytes]) -> AsyncIterator[trio.Process]:
    """Run ``argv`` until the block ends; ready once it accepts on 127.0.0.1:``port``."""
    process = await trio.lowlevel.open_process(list(argv), stdout=log, stderr=log)
    try:
        with trio.fail_after(STARTUP_DEADLINE):
            while not await _accepts(port):
                assert process.poll() is None, f"{argv[0]} exited with {process.returncode}"
                await trio.sleep(POLL_INTERVAL)  # polling a port, under a deadline
        yield process
    finally:
        process.kill()
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await process.wait()


def certificates(tmp_path: Path) -> tuple[trustme.CA, Path, Path, ssl.SSLContext]:
    """A CA, the server's chain and key files (also as one PEM), and a client context."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key))
    with chain.open("wb") as file:
        for blob in cert.cert_chain_pems:
            file.write(blob.bytes())
    (tmp_path / "combined.pem").write_bytes(chain.read_bytes() + key.read_bytes())
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return ca, chain, key, context


async def who_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the scope's client and scheme as JSON (over a WebSocket too)."""
    if scope["type"] == "lifespan":
        return
    seen = json.dumps({"client": scope["client"], "scheme": scope["scheme"]})
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": seen})
        await send({"type": "websocket.close"})
        return
    body = seen.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
