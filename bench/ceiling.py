"""The ceiling: a minimal trio socket loop that answers each request with a canned response.

No HTTP parsing, no ASGI: every ``\\r\\n\\r\\n`` seen on a connection counts as
one request and gets the same hello-world response, so pipelined requests are
answered in one write. It shows what trio itself can do on this machine, the
upper bound for any trio server in the same run. Only bodiless requests
(GET) make sense against it.

    python bench/ceiling.py --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import argparse
import contextlib
import errno

import trio

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"
HEAD_END = b"\r\n\r\n"
RECV_SIZE = 65536
# Accept errors that mean "out of a resource for now": wait a little and go on.
CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


async def _send_all(sock: trio.socket.SocketType, data: bytes) -> None:
    view = memoryview(data)
    while view:
        sent = await sock.send(view)
        view = view[sent:]


async def handle(sock: trio.socket.SocketType) -> None:
    """Answer every request head on one connection until the peer closes it."""
    pending = b""
    with sock, contextlib.suppress(OSError):
        while True:
            data = await sock.recv(RECV_SIZE)
            if not data:
                return
            pending += data
            count = pending.count(HEAD_END)
            if count:
                # Keep only the unfinished head after the last complete one.
                pending = pending[pending.rfind(HEAD_END) + len(HEAD_END) :]
                await _send_all(sock, RESPONSE * count)


async def serve(host: str, port: int) -> None:
    listener = trio.socket.socket()
    listener.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
    await listener.bind((host, port))
    listener.listen(4096)
    async with trio.open_nursery() as nursery:
        while True:
            try:
                sock, _ = await listener.accept()
            except OSError as exc:
                if exc.errno not in CAPACITY_ERRNOS:
                    raise
                await trio.sleep(0.01)
                continue
            sock.setsockopt(trio.socket.IPPROTO_TCP, trio.socket.TCP_NODELAY, 1)
            nursery.start_soon(handle, sock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(serve, args.host, args.port)


if __name__ == "__main__":
    main()
