"""A client that leaves while its app computes is noticed, and our end closed (no CLOSE_WAIT).

Over real sockets on both loops, for a FIN and for a reset (``SO_LINGER`` 0): the app
reads its (empty) body, then computes without calling ``receive()``. Within 5 s the
server's socket for that client is closed: found by looking at this process's own
sockets (``getpeername`` and ``TCP_INFO`` on each descriptor), not with ``ss``. The
app's next ``receive()`` then returns ``http.disconnect`` and its next ``send()``
raises the disconnect ``OSError``.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Any

import anyio
import anyio.abc
import pytest

from trio_asgi import ClientDisconnected
from trio_asgi._server._in_flight import CHECK_INTERVAL
from trio_asgi._types import Receive, Scope, Send

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("virtual_clock")]

TCP_CLOSE_WAIT = 8
CLOSE_WITHIN = 5.0
GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


class ComputingApp:
    """Reads the body, then computes until released; then receives and sends once."""

    def __init__(self) -> None:
        self.computing = anyio.Event()
        self.release = anyio.Event()
        self.done = anyio.Event()
        self.after: list[Any] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "http.request"
        self.computing.set()
        await self.release.wait()
        try:
            self.after.append(await receive())
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except ClientDisconnected as exc:
            self.after.append(exc)
            raise
        finally:
            self.done.set()


def tcp_state(sock: socket.socket) -> int:
    state: int = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    return state


def server_side_sockets(client_address: tuple[str, int]) -> dict[int, int]:
    """This process's open sockets whose peer is ``client_address``: {inode: TCP state}."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fd = os.dup(int(name))
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            os.close(fd)
            continue  # not a socket
        with sock:
            try:
                if sock.type == socket.SOCK_STREAM and sock.getpeername() == client_address:
                    found[os.fstat(sock.fileno()).st_ino] = tcp_state(sock)
            except OSError:
                continue  # not connected, or not TCP
    return found


def open_socket_inodes() -> set[int]:
    """The inodes of every socket this process still has a descriptor for."""
    inodes = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


async def wait_until_closed(inodes: set[int]) -> float:
    """Poll (with a deadline) until no descriptor refers to those sockets; the time taken."""
    started = anyio.current_time()
    with anyio.fail_after(CLOSE_WITHIN):
        while inodes & open_socket_inodes():  # noqa: ASYNC110 - kernel state: no event to await
            await anyio.sleep(CHECK_INTERVAL / 10)
    return anyio.current_time() - started


@pytest.mark.parametrize("how", ["fin", "reset"])
async def test_a_client_that_leaves_while_the_app_computes_is_closed(
    run_server: Any, how: str
) -> None:
    app = ComputingApp()
    with anyio.fail_after(30):
        async with run_server(app) as server:
            host, port = server.addresses[0].rsplit(":", 1)
            client = await anyio.connect_tcp(host, int(port))
            raw: socket.socket = client.extra(anyio.abc.SocketAttribute.raw_socket)
            address = raw.getsockname()
            await client.send(GET)
            await app.computing.wait()
            [server_socket] = server_side_sockets(address)
            if how == "fin":
                await client.send_eof()
                # Before the fix the server's socket sat in CLOSE_WAIT until the app returned.
                with anyio.fail_after(CLOSE_WITHIN):
                    while server_side_sockets(address) != {server_socket: TCP_CLOSE_WAIT}:  # noqa: ASYNC110
                        await anyio.sleep(0.01)
            else:
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                await client.aclose()
            assert await wait_until_closed({server_socket}) <= CLOSE_WITHIN
            if how == "fin":
                with pytest.raises(anyio.EndOfStream):
                    await client.receive()  # our FIN came back: the socket closed cleanly
                await client.aclose()
            app.release.set()
            with anyio.fail_after(CLOSE_WITHIN):
                await app.done.wait()
    assert app.after[0] == {"type": "http.disconnect"}
    assert isinstance(app.after[1], OSError)
