"""What an idle HTTP/2 connection costs the server, in bytes (issue 13: at most 3x HTTP/1.1).

The bench's ``h2_idle_1k`` measures the server's RSS growth per idle HTTP/2
connection (prior knowledge, one ``GET /`` on stream 1, then idle) against its own
``idle_1k`` (HTTP/1.1). Here the same thing is measured in-process with
:mod:`tracemalloc`, as ``test_idle_memory.py`` does for HTTP/1.1: a real server, and
a client in a subprocess (so none of the client's objects are counted) that opens
the connections, makes one request on each, acknowledges our SETTINGS and keeps
them open. Once every server task waits again, the traced memory grown since before
the connections, divided by their number, must stay under a bound per loop.

What the bounds hold: h2's per-connection dispatch dict of bound methods and
hpack's deques (``_http2_lean_tables``), the reset tracker's deque and the flood
counter's dicts (``_http2_limits``), a second cancel scope around every read and
the stream group's suspended generator (``_http2_connection``, ``_http2_tasks``), and
a writer task (with its events and cancel scope) kept while nothing is written
(``_http2_writer``): about 9 KiB on trio and 12 KiB on asyncio, which these bounds
fail without.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tests.server.idle_memory_harness import idle_cost
from trio_asgi._server import _fast_paths
from trio_asgi._types import Receive, Scope, Send

pytestmark = pytest.mark.anyio

CONNECTIONS = 200
TIMEOUT = 60
#: The most an idle HTTP/2 connection may cost on each loop, in traced bytes. Measured
#: (CPython 3.11, h2 4.3, anyio 4.16): trio 15.5 KiB, asyncio 15.3 KiB, uvloop 15.5 KiB
#: (before this bound: 24.8, 27.8 and 27.8 KiB).
FAST_PATH_BOUNDS = {
    "trio": int(16.5 * 1024),
    "asyncio": int(16.5 * 1024),
    "uvloop": int(16.5 * 1024),
}
#: With the fast paths off (``TRIO_ASGI_FAST_PATH=0``, ``nox -s tests_generic``): anyio's
#: streams and task groups. Measured: trio 18.5 KiB, asyncio 20.8 KiB, uvloop 21.1 KiB
#: (28.9, 32.8 and 33.0 before).
GENERIC_BOUNDS = {"trio": int(19.5 * 1024), "asyncio": 22 * 1024, "uvloop": 22 * 1024}
BOUNDS = FAST_PATH_BOUNDS if _fast_paths.ENABLED else GENERIC_BOUNDS

#: Prior knowledge: the preface, an empty SETTINGS, then HEADERS on stream 1
#: (END_STREAM | END_HEADERS) with an HPACK block of :method GET, :scheme http, :path /
#: from the static table and :authority "t" as a literal without indexing. Once the
#: response has ended (END_STREAM on stream 1), the ACK of the server's SETTINGS.
CLIENT = r"""
import socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
block = b"\x82\x86\x84\x01\x01t"
request = (
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    + len(block).to_bytes(3, "big") + b"\x01\x05\x00\x00\x00\x01" + block
)

def response_ended(data):
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        kind, flags, stream = data[3], data[4], int.from_bytes(data[5:9], "big")
        if kind in (0, 1) and stream == 1 and flags & 1:
            return True
        data = data[9 + length:]
    return False

held = []
for _ in range(count):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(request)
    received = b""
    while not response_ended(received):
        chunk = sock.recv(65536)
        if not chunk:
            sys.exit("the server closed a connection")
        received += chunk
    sock.sendall(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")  # SETTINGS ACK
    held.append(sock)
print("ready", flush=True)
sys.stdin.read()  # hold them until the test closes our stdin
"""


@pytest.fixture(params=["trio", "asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> str | tuple[str, dict[str, Any]]:
    if request.param == "uvloop":
        return ("asyncio", {"use_uvloop": True})
    return str(request.param)


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    assert scope["http_version"] == "2"
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]}
    )
    await send({"type": "http.response.body", "body": b"idle"})


async def test_an_idle_http2_connection_stays_under_its_bound(
    run_server: Any, anyio_backend: str | tuple[str, dict[str, Any]]
) -> None:
    loop = "uvloop" if isinstance(anyio_backend, tuple) else anyio_backend
    with anyio.fail_after(TIMEOUT):
        async with run_server(hello, timeout_keep_alive=TIMEOUT) as server:
            per_connection = await idle_cost(server, CLIENT, CONNECTIONS)
    assert per_connection <= BOUNDS[loop], (
        f"an idle HTTP/2 connection costs {per_connection:.0f} bytes on {loop}, "
        f"over the bound of {BOUNDS[loop]}"
    )
