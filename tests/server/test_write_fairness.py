"""Fairness under a write burst (issue 12): a fresh request is not stuck behind writers.

Hundreds of clients ask for a long streamed response and never read, so the
server has hundreds of writers, each able to copy a socket buffer's worth into
the kernel without waiting. The event loop runs in passes (trio's batches,
asyncio's loop iterations) and a fresh connection needs a few of them to be
answered: if every writer copies all it can in every pass, the fresh request
waits behind all of it (seconds, with hundreds of clients and the kernel's
autotuned buffers: ``bench/burst_client.py``). Large writes take turns
(``_server/_write_turns.py``), a few per pass, so it does not.

What is checked is how many chunks went out ahead of the fresh request, not how
long it waited: at test size (200 clients, buffers bounded to 128 MiB in all) the
difference in time is tens of milliseconds, which a busy machine hides; the
count does not move with the machine's load. The burst's connections and the
fresh one are made with blocking stdlib sockets (the kernel completes a loopback
connect() into the listen backlog), and the burst's responses start streaming
when the fresh request is already queued: nothing depends on scheduling, and no
test sleeps. Runs on trio, asyncio and uvloop; ``TRIO_ASGI_FAST_PATH=0`` runs it
over the generic transport.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import anyio
import pytest

from trio_asgi._types import Receive, Scope, Send

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["trio", "asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> str | tuple[str, dict[str, Any]]:
    """Both loops, and uvloop: the event-loop transport differs."""
    if request.param == "uvloop":
        return ("asyncio", {"use_uvloop": True})
    return str(request.param)


#: Clients that never read.
WRITERS = 200
#: The server's send buffer per connection (Linux doubles it), set on the listening
#: socket so every accepted one inherits it: fixed, so the test does not depend on
#: autotuning, and small, so the burst holds at most 200 x (512 + 128) KiB of kernel
#: memory.
SEND_BUFFER = 256 * 1024
#: The clients' receive buffers.
RECEIVE_BUFFER = 64 * 1024
CHUNK = b"x" * 65536
#: Far more than both buffers hold: every writer ends up waiting for its client.
CHUNKS = 64
#: Large writes the burst may get in ahead of the fresh request. Counted, not timed,
#: so a busy machine does not move it. With one turn a pass 0-45 went ahead; with the
#: four of _write_turns.TURNS (chosen for streaming throughput: one turn a pass cost
#: trio a quarter of its stream_1m throughput) up to 180. Without turns, 1,800 on the
#: fast paths (every writer filled both its buffers, 9 chunks, in one pass) and
#: 300-1,000 on the generic transport (a chunk per writer per pass; on trio at least
#: one whole pass, 200, before the fresh connection's task runs).
MOST_AHEAD = 300


class Burst:
    """An app whose WRITERS long responses start streaming together, when ``go`` is set.

    Each stream sends its head, then waits for ``go``: so the burst of writes and the
    fresh request meet the server at the same moment, after the burst's connections
    were accepted and their requests read (a queue of new requests is not under test).
    """

    def __init__(self) -> None:
        self.started = 0
        self.all_started = anyio.Event()
        self.go = anyio.Event()
        #: Chunks the burst's send() calls have handed to the kernel so far.
        self.chunks_sent = 0
        #: ... and when the fresh request reached the app.
        self.chunks_before_fresh: int | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/fresh":
            self.chunks_before_fresh = self.chunks_sent
            headers = [(b"content-length", b"5")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"fresh"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        self.started += 1
        if self.started == WRITERS:  # after this, only the fresh request is new
            self.all_started.set()
        await self.go.wait()
        for _ in range(CHUNKS):
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
            self.chunks_sent += 1
        await send({"type": "http.response.body", "body": b""})


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    sock.bind(("127.0.0.1", 0))
    sock.listen(WRITERS + 16)
    return sock


@contextmanager
def stalled_clients(port: int, count: int = WRITERS) -> Iterator[list[socket.socket]]:
    """Connections that each ask for the long response and never read."""
    with ExitStack() as stack:
        clients: list[socket.socket] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"GET /stream HTTP/1.1\r\nHost: test\r\n\r\n")
            clients.append(sock)
        yield clients


async def read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (the request said ``close``)."""
    sock.setblocking(False)
    data = b""
    while True:
        await anyio.wait_readable(sock)
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


async def test_a_fresh_request_is_answered_during_a_write_burst(run_server):
    burst = Burst()
    with listening_socket() as listener, anyio.fail_after(30):
        port = listener.getsockname()[1]
        async with run_server(burst, sockets=[listener], timeout_write=None):
            with stalled_clients(port) as clients, socket.socket() as fresh:
                await burst.all_started.wait()
                fresh.connect(("127.0.0.1", port))
                fresh.sendall(b"GET /fresh HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                burst.go.set()
                started = time.monotonic()
                response = await read_response(fresh)
                waited = time.monotonic() - started
                assert response.startswith(b"HTTP/1.1 200 ")
                assert response.endswith(b"fresh")
                ahead = burst.chunks_before_fresh
                assert ahead is not None
                assert ahead <= MOST_AHEAD, (
                    f"{ahead} chunks of 64 KiB went ahead; the fresh request waited {waited:.3f} s"
                )
                assert len(clients) == WRITERS


async def test_a_client_that_stopped_reading_holds_no_turn(run_server):
    """Turns are passed on before the send: large writes to a stalled client and to
    one that reads do not wait for each other (with no write timeout, a turn held
    while waiting for the stalled client would hang this test)."""
    burst = Burst()
    burst.go.set()
    with listening_socket() as listener, anyio.fail_after(30):
        port = listener.getsockname()[1]
        async with run_server(burst, sockets=[listener], timeout_write=None):
            with stalled_clients(port, count=3), socket.socket() as reader:
                reader.connect(("127.0.0.1", port))
                reader.sendall(b"GET /stream HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                response = await read_response(reader)
                assert response.endswith(b"0\r\n\r\n")
                assert response.count(CHUNK) == CHUNKS
