"""Fairness under a write burst: how long a fresh request waits behind stalled writers.

Opens N connections (32 every ``--pace`` seconds) that each send ``GET
/stream10m`` (10 MiB streamed) and never read, so the server has N responses to
push into socket buffers that fill and stay full. Meanwhile, every
``--interval`` seconds from the burst's first connection until ``--duration``
seconds later, a fresh connection is opened and ``GET /`` is timed from
``connect()`` to the last byte of its response. Reports the max, p99 and p50 of
those latencies (a probe that gets no answer within ``--probe-timeout`` counts
as that long, and as failed), and how many bytes the stalled clients had
received (to show the burst was real). Stdlib only, loopback only, bounded in
count and time. Prints one JSON line; ``--trace`` first prints every probe.

The pacing (640 new clients a second by default) keeps the figure about the
writes: with ``--pace 0`` a fresh request also queues behind the N requests
that arrived in the same instant, which ``--path /`` (the same burst of
hello-world requests, no writes to speak of) measures alone.

    python -m bench.burst_client --port 8000 --connections 400 --duration 8
"""

from __future__ import annotations

import argparse
import fcntl
import json
import re
import socket
import termios
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

PROBE_REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
BATCH = 32  # connections opened at once: a full accept queue would drop SYNs for 1 s
PROBE_WORKERS = 64  # probes in flight at once, at most
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def _complete(data: bytes) -> bool:
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    match = _CONTENT_LENGTH.search(data, 0, head_end + 2)
    return match is not None and len(data) >= head_end + 4 + int(match.group(1))


def probe(host: str, port: int, timeout: float) -> tuple[float, float] | None:
    """Seconds to connect, and to a complete ``GET /`` response; None if it failed."""
    started = time.monotonic()
    deadline = started + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            connected = time.monotonic() - started
            sock.sendall(PROBE_REQUEST)
            data = b""
            while not _complete(data):
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                data += chunk
    except OSError:  # TimeoutError included
        return None
    return connected, time.monotonic() - started


def open_burst(args: argparse.Namespace, socks: list[socket.socket], stop: threading.Event) -> None:
    """Open the connections that each ask for ``args.path`` (10 MiB) and never read."""
    request = f"GET {args.path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    while len(socks) < args.connections and not stop.wait(args.pace if socks else 0):
        for _ in range(min(BATCH, args.connections - len(socks))):
            sock = socket.create_connection((args.host, args.port), timeout=10)
            sock.sendall(request)
            socks.append(sock)


def _unread_bytes(socks: list[socket.socket]) -> int:
    total = 0
    for sock in socks:
        try:
            total += int.from_bytes(fcntl.ioctl(sock, termios.FIONREAD, b"\0\0\0\0"), "little")
        except OSError:
            pass
    return total


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(args: argparse.Namespace) -> dict[str, object]:
    socks: list[socket.socket] = []
    stop = threading.Event()
    opener_error: list[BaseException] = []

    def opener() -> None:
        try:
            open_burst(args, socks, stop)
        except OSError as exc:
            opener_error.append(exc)

    probes: list[tuple[float, Future[tuple[float, float] | None]]] = []
    started = time.monotonic()
    thread = threading.Thread(target=opener, daemon=True)
    thread.start()
    opened_in: float | None = None
    try:
        with ThreadPoolExecutor(PROBE_WORKERS) as pool:
            tick = started
            while tick - started < args.duration:
                probes.append(
                    (tick - started, pool.submit(probe, args.host, args.port, args.probe_timeout))
                )
                tick += args.interval
                time.sleep(max(0.0, tick - time.monotonic()))
                if opened_in is None and not thread.is_alive():
                    opened_in = time.monotonic() - started
            outcomes = [(at, future.result()) for at, future in probes]
        stop.set()
        thread.join()
        unread = _unread_bytes(socks)
    finally:
        stop.set()
        for sock in socks:
            sock.close()
    if opener_error:
        return {"error": f"{type(opener_error[0]).__name__}: {opener_error[0]}"}
    if args.trace:  # when each probe started, its connect time and latency
        for at, outcome in outcomes:
            times = (
                "failed" if outcome is None else f"{outcome[0] * 1e3:9.1f} {outcome[1] * 1e3:9.1f}"
            )
            print(f"{at:7.3f} {times}")
    results = [(at, None if outcome is None else outcome[1]) for at, outcome in outcomes]
    latencies = [args.probe_timeout if latency is None else latency for _, latency in results]
    worst_at, _ = max(results, key=lambda item: args.probe_timeout if item[1] is None else item[1])
    return {
        "connections": len(socks),
        "seconds_to_open": opened_in,
        "probes": len(latencies),
        "failed": sum(latency is None for _, latency in results),
        "max_ms": max(latencies) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "worst_at_s": worst_at,
        "unread_mib": unread / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=400)
    parser.add_argument("--path", default="/stream10m", help="what the burst asks for")
    parser.add_argument(
        "--pace", type=float, default=0.05, help="seconds between batches of 32 connections"
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of probing")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between probes")
    parser.add_argument("--probe-timeout", type=float, default=10.0)
    parser.add_argument("--trace", action="store_true", help="print every probe's latency")
    args = parser.parse_args()
    try:
        result = run(args)
    except OSError as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
