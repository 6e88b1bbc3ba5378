"""HTTPS straight from trio-asgi: certificate files in the Config, reloaded in place.

The command does the same with ``trio-asgi tls_app:app --ssl-certfile cert.pem
--ssl-keyfile key.pem``, and reloads the files on SIGHUP. Run this file with
``python tls_app.py`` (``pip install httpx trustme``): trustme makes a throwaway
certificate authority, so it runs anywhere.
"""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import trio
import trustme

import trio_asgi

Message = MutableMapping[str, Any]


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": f"Hello over {scope['scheme']}\n".encode()})


def write_certificate(ca: trustme.CA, directory: Path) -> None:
    """What certbot or your CA would do: cert.pem (the chain) and key.pem."""
    cert = ca.issue_cert("127.0.0.1", "localhost")
    (directory / "cert.pem").write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(directory / "key.pem"))


async def main(directory: Path) -> None:
    ca = trustme.CA()
    write_certificate(ca, directory)
    config = trio_asgi.Config(
        bind=("127.0.0.1:0",),
        ssl_certfile=str(directory / "cert.pem"),
        ssl_keyfile=str(directory / "key.pem"),
    )
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_asgi.serve, app, config)
        url = f"https://{server.addresses[0]}/"
        async with httpx.AsyncClient(verify=client_context) as client:
            response = await client.get(url)
            print(response.status_code, response.text, end="")
            # The certificate was renewed on disk: new connections get the new one,
            # open ones carry on. (The command does this on SIGHUP.)
            write_certificate(ca, directory)
            server.reload_tls()
            response = await client.get(url)
            print(response.status_code, response.text, end="")
        server.shutdown()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        trio.run(main, Path(folder))
