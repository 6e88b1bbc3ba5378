"""WebSocket echo load: messages per second over one or many connections.

Stdlib only and deliberately lean (a hand-written frame codec, non-blocking
sockets under one epoll loop) so that the client takes as little as possible
of the CPU it shares with the server. Each connection keeps exactly one
message in flight: send, wait for the echo, send the next. Prints one JSON
line: messages, seconds, errors, p50_us, p99_us.

    python -m bench.ws_client --port 8000 --connections 50 --duration 5
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import selectors
import socket
import struct
import time
from dataclasses import dataclass, field

PAYLOAD = b"0123456789abcdef" * 2  # 32 bytes of text
RECV_SIZE = 65536
HANDSHAKE_TIMEOUT = 10.0
_MASK = b"\x11\x22\x33\x44"  # a fixed mask: servers must unmask, none checks randomness
_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING = 0x0, 0x1, 0x2, 0x8, 0x9
_OP_PONG = 0xA


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked client frame."""
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    masked = bytes(b ^ _MASK[i % 4] for i, b in enumerate(payload))
    return head + _MASK + masked


MESSAGE_FRAME = client_frame(_OP_TEXT, PAYLOAD)
CLOSE_FRAME = client_frame(_OP_CLOSE, struct.pack("!H", 1000))


def parse_frames(buffer: bytearray) -> list[tuple[bool, int, bytes]]:
    """Remove every complete server frame from ``buffer``; return (fin, opcode, payload) each."""
    frames: list[tuple[bool, int, bytes]] = []
    while len(buffer) >= 2:
        first, second = buffer[0], buffer[1]
        length, offset = second & 0x7F, 2
        if length == 126:
            if len(buffer) < 4:
                break
            (length,) = struct.unpack_from("!H", buffer, 2)
            offset = 4
        elif length == 127:
            if len(buffer) < 10:
                break
            (length,) = struct.unpack_from("!Q", buffer, 2)
            offset = 10
        if second & 0x80:  # servers must not mask; skip a key if one does anyway
            offset += 4
        if len(buffer) < offset + length:
            break
        frames.append((bool(first & 0x80), first & 0x0F, bytes(buffer[offset : offset + length])))
        del buffer[: offset + length]
    return frames


def handshake(host: str, port: int, path: str) -> tuple[socket.socket, bytearray]:
    """Open a connection and upgrade it; return the socket and any bytes after the 101 head."""
    sock = socket.create_connection((host, port), timeout=HANDSHAKE_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    received = bytearray()
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(RECV_SIZE)
        if not chunk:
            sock.close()
            raise ConnectionError("closed during the WebSocket handshake")
        received += chunk
        if len(received) > 65536:
            sock.close()
            raise ConnectionError("handshake response head too large")
    head, _, rest = bytes(received).partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    if b" 101" not in status_line:
        sock.close()
        raise ConnectionError(f"handshake refused: {status_line.decode(errors='replace')}")
    return sock, bytearray(rest)


@dataclass
class _Conn:
    sock: socket.socket
    buffer: bytearray
    sent_at: float = 0.0
    latencies: list[float] = field(default_factory=list)


def _on_readable(conn: _Conn, deadline: float) -> tuple[int, bool]:
    """Read and answer what arrived; return (echoes counted, still sending)."""
    data = conn.sock.recv(RECV_SIZE)
    if not data:
        raise ConnectionError("server closed the connection")
    conn.buffer += data
    echoes = 0
    for fin, opcode, payload in parse_frames(conn.buffer):
        if opcode == _OP_PING:
            conn.sock.sendall(client_frame(_OP_PONG, payload))
        elif opcode == _OP_CLOSE:
            raise ConnectionError("server sent a close frame")
        elif fin and opcode in (_OP_TEXT, _OP_BINARY, _OP_CONT):
            now = time.perf_counter()
            conn.latencies.append(now - conn.sent_at)
            echoes += 1
            if now >= deadline:
                return echoes, False
            conn.sent_at = now
            conn.sock.sendall(MESSAGE_FRAME)
    return echoes, True


def run(host: str, port: int, path: str, connections: int, duration: float) -> dict[str, float]:
    """Run the echo load and return the summary."""
    conns = [_Conn(*handshake(host, port, path)) for _ in range(connections)]
    selector = selectors.DefaultSelector()
    start = time.perf_counter()
    deadline = start + duration
    for conn in conns:
        conn.sock.setblocking(False)
        selector.register(conn.sock, selectors.EVENT_READ, conn)
        conn.sent_at = time.perf_counter()
        conn.sock.sendall(MESSAGE_FRAME)  # 40 bytes: always fits an empty send buffer
    messages = errors = 0
    active = len(conns)
    # Bounded in time: every wait has a timeout and the loop ends at the deadline plus 5 s.
    while active and time.perf_counter() < deadline + 5.0:
        for key, _ in selector.select(timeout=1.0):
            conn = key.data
            try:
                echoes, sending = _on_readable(conn, deadline)
            except OSError:  # ConnectionError included
                errors += 1
                sending, echoes = False, 0
            messages += echoes
            if not sending:
                selector.unregister(conn.sock)
                active -= 1
    elapsed = time.perf_counter() - start
    for conn in conns:
        try:
            conn.sock.setblocking(True)
            conn.sock.settimeout(1.0)
            conn.sock.sendall(CLOSE_FRAME)
        except OSError:
            pass
        conn.sock.close()
    latencies = sorted(latency for conn in conns for latency in conn.latencies)
    return {
        "messages": messages,
        "seconds": elapsed,
        "errors": errors,
        "p50_us": _percentile(latencies, 50) * 1e6,
        "p99_us": _percentile(latencies, 99) * 1e6,
    }


def _percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/ws")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    try:
        result: dict[str, float | str] = dict(
            run(args.host, args.port, args.path, args.connections, args.duration)
        )
    except OSError as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
