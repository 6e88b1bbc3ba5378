"""Idle keep-alive connections: how much server memory each one costs.

Opens N connections in batches, makes one ``GET /`` on each (so every
connection has been through a full request cycle and sits idle in keep-alive),
then reads the summed VmRSS of the server's processes and reports
``(rss_after - rss_before) / N`` in KiB. Stdlib only. Prints one JSON line;
``{"skipped": reason}`` when the open-files limits cannot hold N connections.

With ``--h2`` each connection speaks cleartext HTTP/2 by prior knowledge instead:
the preface and SETTINGS, one ``GET /`` on stream 1, and once its response has
ended the ACK of the server's SETTINGS; it then sits idle with no stream open, the
HTTP/2 twin of an idle keep-alive connection.

    python -m bench.idle_client --port 8000 --count 1000 --pid 12345 [--h2]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import selectors
import socket
import time
from pathlib import Path

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
_AUTHORITY = b"127.0.0.1"
#: HPACK (RFC 7541 appendix A): :method GET, :scheme http, :path / from the static
#: table, then :authority as a literal without indexing (name index 1).
_H2_HEADER_BLOCK = b"\x82\x86\x84\x01" + bytes([len(_AUTHORITY)]) + _AUTHORITY
H2_REQUEST = (
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # SETTINGS, empty
    # HEADERS on stream 1, END_STREAM | END_HEADERS.
    + len(_H2_HEADER_BLOCK).to_bytes(3, "big")
    + b"\x01\x05\x00\x00\x00\x01"
    + _H2_HEADER_BLOCK
)
H2_SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
_H2_END_STREAM = 0x1
_H2_GOAWAY = 7
BATCH = 32  # at most a small listen backlog (Daphne: 50): a full queue drops SYNs for 1 s
SETTLE_SECONDS = 0.25
STALL_SECONDS = 15.0  # one batch may take this long before the run counts as failed
FD_MARGIN = 64  # descriptors a process needs besides the connections
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+)", status, re.MULTILINE)
        total += int(match.group(1)) if match else 0
    return total


def _soft_nofile(pid: int) -> int | None:
    try:
        limits = Path(f"/proc/{pid}/limits").read_text()
    except OSError:
        return None
    match = re.search(r"^Max open files\s+(\S+)", limits, re.MULTILINE)
    if match is None or match.group(1) == "unlimited":
        return None
    return int(match.group(1))


def limits_problem(count: int, pids: list[int]) -> str | None:
    """Why ``count`` connections cannot be held (after raising our own limit), or None."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < count + FD_MARGIN:
        return f"client RLIMIT_NOFILE hard limit {hard} < {count + FD_MARGIN}"
    if soft != resource.RLIM_INFINITY and soft < count + FD_MARGIN:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server_soft = max((_soft_nofile(pid) or 0 for pid in pids), default=0)
    if server_soft and server_soft < count + FD_MARGIN:
        return f"server RLIMIT_NOFILE {server_soft} < {count + FD_MARGIN} (raise ulimit -n)"
    return None


def _response_complete(data: bytes) -> bool:
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    match = _CONTENT_LENGTH.search(data, 0, head_end + 2)
    if match is not None:
        return len(data) >= head_end + 4 + int(match.group(1))
    return data.endswith(b"0\r\n\r\n")  # chunked


def _h2_frames(data: bytes) -> list[tuple[int, int, int]]:
    """The (type, flags, stream id) of each whole frame in ``data``, after the preface."""
    frames = []
    pos = 0
    while len(data) - pos >= 9:
        length = int.from_bytes(data[pos : pos + 3], "big")
        if len(data) - pos < 9 + length:
            break
        stream = int.from_bytes(data[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
        frames.append((data[pos + 3], data[pos + 4], stream))
        pos += 9 + length
    return frames


def _h2_response_complete(data: bytes) -> bool:
    """Stream 1's response ended (a DATA or HEADERS frame on it with END_STREAM)."""
    for kind, flags, stream in _h2_frames(data):
        if kind == _H2_GOAWAY:
            raise ConnectionError("server sent GOAWAY before answering")
        if stream == 1 and kind in (0, 1) and flags & _H2_END_STREAM:
            return True
    return False


def open_batch(
    host: str, port: int, size: int, deadline: float, *, h2: bool = False
) -> list[socket.socket]:
    """Open ``size`` connections, make one request on each, wait for every response."""
    selector = selectors.DefaultSelector()
    received: dict[socket.socket, bytes] = {}
    complete = _h2_response_complete if h2 else _response_complete
    for _ in range(size):
        sock = socket.create_connection((host, port), timeout=STALL_SECONDS)
        sock.sendall(H2_REQUEST if h2 else REQUEST)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, sock)
        received[sock] = b""
    pending = set(received)
    stall_deadline = min(deadline, time.time() + STALL_SECONDS)
    while pending:
        if time.time() > stall_deadline:
            missing = f"{len(pending)} of {size} responses"
            raise TimeoutError(f"{missing} still missing after {STALL_SECONDS:g} s")
        for key, _ in selector.select(timeout=1.0):
            sock = key.data
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed a connection before answering")
            received[sock] += chunk
            if complete(received[sock]):
                selector.unregister(sock)
                pending.discard(sock)
                if h2:  # the server's SETTINGS came first: acknowledge them
                    sock.setblocking(True)
                    sock.sendall(H2_SETTINGS_ACK)
                    sock.setblocking(False)
    selector.close()
    return list(received)


def count_closed(socks: list[socket.socket], *, h2: bool = False) -> int:
    """How many connections the server has closed (readable: EOF or unexpected bytes).

    HTTP/2: a late frame (a WINDOW_UPDATE, the ACK of our SETTINGS) is no close; EOF,
    a reset or a GOAWAY is.
    """
    selector = selectors.DefaultSelector()
    for sock in socks:
        selector.register(sock, selectors.EVENT_READ, sock)
    readable: list[socket.socket] = [key.data for key, _ in selector.select(timeout=0)]
    selector.close()
    if not h2:
        return len(readable)
    closed = 0
    for sock in readable:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            continue
        except OSError:
            closed += 1
            continue
        if not data or any(kind == _H2_GOAWAY for kind, _, _ in _h2_frames(data)):
            closed += 1
    return closed


def run(
    host: str, port: int, count: int, pids: list[int], timeout: float, *, h2: bool = False
) -> dict[str, object]:
    problem = limits_problem(count, pids)
    if problem is not None:
        return {"skipped": problem}
    deadline = time.time() + timeout
    # Warm the server's paths with a few connections first so that imports and
    # first-use caches do not land in the per-connection figure.
    for sock in open_batch(host, port, 8, deadline, h2=h2):
        sock.close()
    time.sleep(SETTLE_SECONDS)
    before = rss_kib(pids)
    socks: list[socket.socket] = []
    started = time.time()
    try:
        while len(socks) < count:
            socks += open_batch(host, port, min(BATCH, count - len(socks)), deadline, h2=h2)
        opened_in = time.time() - started
        time.sleep(SETTLE_SECONDS)
        after = rss_kib(pids)
        closed = count_closed(socks, h2=h2)
    finally:
        for sock in socks:
            sock.close()
    return {
        "connections": len(socks),
        "closed_by_server": closed,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_conn": (after - before) / len(socks),
        "seconds_to_open": opened_in,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--pid", type=int, action="append", required=True, help="server pids")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--h2", action="store_true", help="HTTP/2 by prior knowledge")
    args = parser.parse_args()
    try:
        result = run(args.host, args.port, args.count, args.pid, args.timeout, h2=args.h2)
    except OSError as exc:  # TimeoutError and ConnectionError included
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
