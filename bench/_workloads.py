"""The workloads, and running one of them against a running server.

HTTP load comes from ``wrk -t1`` (one load thread: the load generator and the
server share the machine's two cores), HTTP/2 load from ``h2load -t1`` (cleartext,
prior knowledge; see :mod:`bench._h2`), WebSocket, idle-connection and
write-burst load from the small stdlib clients beside this module. Around every
run the harness reads the server's CPU time, so each sample carries CPU
microseconds per request (or message) beside the throughput: on a shared
machine it moves far less.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Literal

from bench import _h2
from bench._proc import cpu_seconds
from bench._servers import REPO, RunningServer

LUA = REPO / "bench" / "lua"
CLIENT_GRACE = 60.0  # seconds a client may take beyond its run before it is killed
WRK_TIMEOUT = "10s"  # wrk counts a request slower than this as a timeout error
QUIET_INTERVAL = 0.25
QUIET_LIMIT = 60.0


@dataclass(frozen=True)
class Workload:
    """One load shape.

    Attributes:
        key: the name used by ``--only`` and in the report.
        title: the report's heading.
        kind: which client runs it.
        unit: what ``Sample.value`` counts.
        path: the request path (``/ws`` for WebSocket).
        connections: concurrent connections (idle count for ``idle``).
        script: the wrk Lua script under bench/lua/ and its arguments.
        streams: ``h2load``: concurrent streams per connection.
        upload: ``h2load``: bytes each request POSTs (0: a GET).
        http2: over cleartext HTTP/2 (prior knowledge), not HTTP/1.1.
    """

    key: str
    title: str
    kind: Literal["wrk", "ws", "idle", "burst", "h2load"]
    unit: str
    path: str = "/"
    connections: int = 64
    script: tuple[str, ...] = ("get.lua",)
    streams: int = 1
    upload: int = 0
    http2: bool = False

    @property
    def higher_is_better(self) -> bool:
        return self.kind not in ("idle", "burst")


WORKLOADS: tuple[Workload, ...] = (
    Workload("hello_1", "hello world, 1 connection", "wrk", "req/s", connections=1),
    Workload("hello_64", "hello world, 64 connections", "wrk", "req/s", connections=64),
    Workload("hello_256", "hello world, 256 connections", "wrk", "req/s", connections=256),
    Workload(
        "hello_256_workers",
        "hello world, 256 connections, 2 worker processes",
        "wrk",
        "req/s",
        connections=256,
    ),
    Workload(
        "pipeline_16",
        "hello world pipelined, depth 16, 32 connections",
        "wrk",
        "req/s",
        connections=32,
        script=("pipeline.lua", "16"),
    ),
    Workload("get_10k", "10 KiB GET, 64 connections", "wrk", "req/s", path="/10k"),
    Workload(
        "stream_1m",
        "1 MiB streamed in 64 KiB chunks, 16 connections",
        "wrk",
        "req/s",
        path="/stream",
        connections=16,
    ),
    Workload(
        "echo_1m",
        "1 MiB POST echoed, 16 connections",
        "wrk",
        "req/s",
        path="/echo",
        connections=16,
        script=("post.lua", str(1024 * 1024)),
    ),
    Workload("json", "Starlette JSON endpoint, 64 connections", "wrk", "req/s", path="/json"),
    # WSGI rows: bench/wsgi_apps.py on the WSGI servers (trio-asgi-wsgi, gunicorn-gthread,
    # uvicorn-a2wsgi) only.
    Workload("wsgi_hello_64", "WSGI hello world, 64 connections", "wrk", "req/s"),
    Workload(
        "wsgi_upload_1m",
        "WSGI 1 MiB POST read in 64 KiB pieces, 16 connections",
        "wrk",
        "req/s",
        path="/upload",
        connections=16,
        script=("post.lua", str(1024 * 1024)),
    ),
    Workload(
        "wsgi_download_1m",
        "WSGI 1 MiB generator response, 16 connections",
        "wrk",
        "req/s",
        path="/download",
        connections=16,
    ),
    Workload("ws_1", "WebSocket echo, 1 connection", "ws", "msg/s", path="/ws", connections=1),
    Workload("ws_50", "WebSocket echo, 50 connections", "ws", "msg/s", path="/ws", connections=50),
    # HTTP/2 rows (issue 13): h2load, cleartext by prior knowledge, on the servers that
    # speak it (the others get "n/a").
    Workload(
        "h2_hello",
        "HTTP/2 hello world, 16 connections x 32 streams",
        "h2load",
        "req/s",
        connections=16,
        streams=32,
        http2=True,
    ),
    Workload(
        "h2_download_1m",
        "HTTP/2 1 MiB streamed in 64 KiB chunks, 16 connections x 4 streams",
        "h2load",
        "req/s",
        path="/stream",
        connections=16,
        streams=4,
        http2=True,
    ),
    Workload(
        "h2_upload_1m",
        "HTTP/2 1 MiB POST read in pieces, 16 connections x 4 streams",
        "h2load",
        "req/s",
        path="/upload",
        connections=16,
        streams=4,
        upload=1024 * 1024,
        http2=True,
    ),
    # After the other loads: the stalled clients' resets keep a server busy for a moment.
    Workload(
        "burst_fairness",
        "a fresh GET / while 400 clients that never read stream 10 MiB each (max latency)",
        "burst",
        "max ms",
        path="/stream10m",
        connections=400,
    ),
    # Last: closing thousands of connections at once can keep a server busy for a while.
    Workload("idle_1k", "1,000 idle keep-alive connections", "idle", "KiB/conn", connections=1000),
    Workload(
        "h2_idle_1k",
        "1,000 idle HTTP/2 connections (one stream served on each)",
        "idle",
        "KiB/conn",
        connections=1000,
        http2=True,
    ),
    Workload(
        "idle_10k", "10,000 idle keep-alive connections", "idle", "KiB/conn", connections=10000
    ),
)
BY_KEY = {workload.key: workload for workload in WORKLOADS}


@dataclass(frozen=True)
class Sample:
    """One run of one workload on one server.

    ``value`` is the throughput (or KiB per connection), None when the run failed;
    ``note`` then says why. Latencies in milliseconds, CPU in microseconds.
    """

    value: float | None
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu_us: float | None = None
    errors: int = 0
    note: str = ""
    #: Idle workloads: seconds the server kept using CPU after the client closed everything.
    busy_s: float | None = None


def wrk_missing() -> str | None:
    """None if wrk is installed, else how to install it."""
    if shutil.which("wrk"):
        return None
    return "n/a: wrk not installed (Debian/Ubuntu: sudo apt-get install -y wrk)"


def _run_client(argv: list[str], timeout: float) -> tuple[dict[str, Any] | None, str]:
    """Run a load client; return its JSON summary (None on failure) and a failure note."""
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False, cwd=REPO)
    except subprocess.TimeoutExpired:
        return None, f"failed: client did not finish within {timeout:.0f} s"
    for line in done.stdout.decode(errors="replace").splitlines():
        marker, _, payload = line.partition(" ")
        # wrk's report.lua prints "BENCH {...}", the Python clients a bare JSON line.
        summary = payload if marker == "BENCH" else line if line.startswith("{") else None
        if summary is not None:
            try:
                return json.loads(summary), ""
            except json.JSONDecodeError:
                return None, f"failed: unreadable client summary: {summary[:120]}"
    output = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
    return None, f"failed: client exited {done.returncode}: {output[-1][:160] if output else ''}"


def _run_wrk(workload: Workload, server: RunningServer, duration: float) -> Sample:
    script, *script_args = workload.script
    argv = [
        "wrk", "-t1", f"-c{workload.connections}", f"-d{max(1, round(duration))}s",
        "--timeout", WRK_TIMEOUT, "--latency", "-s", str(LUA / script),
        f"http://{server.host}:{server.port}{workload.path}",
    ]  # fmt: skip
    if script_args:
        argv += ["--", *script_args]
    pids = server.pids()
    cpu_before = cpu_seconds(pids)
    result, note = _run_client(argv, duration + CLIENT_GRACE)
    cpu = cpu_seconds(pids) - cpu_before
    if result is None:
        return Sample(None, note=note)
    requests = int(result["requests"])
    errors = int(result["socket_errors"] + result["status_errors"] + result["timeouts"])
    if requests == 0:
        return Sample(None, errors=errors, note="failed: no request completed")
    pipelined = workload.script[0] == "pipeline.lua"  # wrk's latency is per batch: not shown
    return Sample(
        value=requests / (result["duration_us"] / 1e6),
        p50_ms=None if pipelined else result["p50_us"] / 1000,
        p99_ms=None if pipelined else result["p99_us"] / 1000,
        cpu_us=cpu * 1e6 / requests,
        errors=errors,
    )


def _run_h2load(workload: Workload, server: RunningServer, duration: float) -> Sample:
    argv = _h2.h2load_argv(
        f"http://{server.host}:{server.port}{workload.path}",
        connections=workload.connections,
        streams=workload.streams,
        duration=duration,
        upload=workload.upload,
    )
    pids = server.pids()
    cpu_before = cpu_seconds(pids)
    summary, note = _h2.run_h2load(argv, duration + CLIENT_GRACE)
    cpu = cpu_seconds(pids) - cpu_before
    if summary is None:
        return Sample(None, note=note)
    if summary.errors:  # a figure from a run with failed requests would flatter the server
        note = f"failed: {summary.errors} of {summary.done} requests failed or were not 2xx"
        return Sample(None, errors=summary.errors, note=note)
    if summary.succeeded == 0:
        return Sample(None, note="failed: no request completed")
    return Sample(
        value=summary.req_per_s,
        p50_ms=None,  # h2load reports the mean, not percentiles
        p99_ms=None,
        cpu_us=cpu * 1e6 / summary.succeeded,
        note=f"mean {summary.mean_ms:.1f} ms" if summary.mean_ms is not None else "",
    )


def _run_ws(workload: Workload, server: RunningServer, duration: float) -> Sample:
    argv = [
        sys.executable, "-m", "bench.ws_client", "--host", server.host,
        "--port", str(server.port), "--path", workload.path,
        "--connections", str(workload.connections), "--duration", str(duration),
    ]  # fmt: skip
    pids = server.pids()
    cpu_before = cpu_seconds(pids)
    result, note = _run_client(argv, duration + CLIENT_GRACE)
    cpu = cpu_seconds(pids) - cpu_before
    if result is None:
        return Sample(None, note=note)
    if "error" in result:
        return Sample(None, note=f"failed: {result['error'][:160]}")
    messages = int(result["messages"])
    if messages == 0:
        return Sample(None, errors=int(result["errors"]), note="failed: no message echoed")
    return Sample(
        value=messages / result["seconds"],
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        cpu_us=cpu * 1e6 / messages,
        errors=int(result["errors"]),
    )


def _run_idle(workload: Workload, server: RunningServer, duration: float) -> Sample:
    argv = [
        sys.executable, "-m", "bench.idle_client", "--host", server.host,
        "--port", str(server.port), "--count", str(workload.connections),
        "--timeout", str(CLIENT_GRACE * 2), *(["--h2"] if workload.http2 else []),
    ]  # fmt: skip
    for pid in server.pids():
        argv += ["--pid", str(pid)]
    result, note = _run_client(argv, CLIENT_GRACE * 3)
    if result is None:
        return Sample(None, note=note)
    if "skipped" in result:
        return Sample(None, note=f"skipped: {result['skipped']}")
    if "error" in result:
        return Sample(None, note=f"failed: {result['error'][:160]}")
    closed, opened = int(result["closed_by_server"]), int(result["connections"])
    busy = wait_quiet(server)
    note = f"{closed} of {opened} closed by the server before the measurement" if closed else ""
    if closed > opened // 100:  # the figure would be per connection that no longer exists
        return Sample(None, errors=closed, busy_s=busy, note=f"failed: {note}")
    return Sample(float(result["kib_per_conn"]), errors=closed, busy_s=busy, note=note)


def _run_burst(workload: Workload, server: RunningServer, duration: float) -> Sample:
    argv = [
        sys.executable, "-m", "bench.burst_client", "--host", server.host,
        "--port", str(server.port), "--path", workload.path,
        "--connections", str(workload.connections), "--duration", str(max(duration, 3.0)),
    ]  # fmt: skip
    result, note = _run_client(argv, duration + CLIENT_GRACE)
    if result is None:
        return Sample(None, note=note)
    if "error" in result:
        return Sample(None, note=f"failed: {result['error'][:160]}")
    busy = wait_quiet(server)
    return Sample(
        value=result["max_ms"],
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        errors=int(result["failed"]),
        busy_s=busy,
    )


def wait_quiet(server: RunningServer) -> float:
    """Wait (at most QUIET_LIMIT s) until the server stops using CPU; return the wait.

    After thousands of connections close at once a server may be busy tearing them
    down; the next workload should measure it at rest, and the wait itself is news.
    """
    started = time.monotonic()
    pids = server.pids()
    before = cpu_seconds(pids)
    while time.monotonic() - started < QUIET_LIMIT and server.died() is None:
        time.sleep(QUIET_INTERVAL)
        after = cpu_seconds(pids)
        if after - before < QUIET_INTERVAL * 0.1:  # under 10% of a core
            break
        before = after
    return time.monotonic() - started


_RUNNERS = {
    "wrk": _run_wrk,
    "ws": _run_ws,
    "idle": _run_idle,
    "burst": _run_burst,
    "h2load": _run_h2load,
}


def run(workload: Workload, server: RunningServer, duration: float) -> Sample:
    """Run one workload against a running server (bounded by ``duration`` plus a grace)."""
    died = server.died()
    if died is not None:
        return Sample(None, note=f"failed: {died}")
    sample = _RUNNERS[workload.kind](workload, server, duration)
    died = server.died()
    if died is not None and sample.value is not None:
        return Sample(None, note=f"failed: {died}")
    return sample


def _touch(server: RunningServer, method: str, path: str, body: bytes = b"") -> None:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request(method, path, body=body or None)
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        pass  # a broken route shows up in its own workload's row
    finally:
        connection.close()


def warm_up_h2(server: RunningServer, seconds: float) -> None:
    """Touch the HTTP/2 rows' routes over HTTP/2, then (``seconds`` >= 1) a short h2load."""
    if _h2.h2load_missing() is not None:
        return
    base = f"http://{server.host}:{server.port}"
    for path, upload in (("/", 0), ("/stream", 0), ("/upload", 1024 * 1024)):
        argv = _h2.h2load_argv(f"{base}{path}", connections=1, streams=1, requests=4, upload=upload)
        _h2.run_h2load(argv, CLIENT_GRACE)
    if seconds >= 1:
        argv = _h2.h2load_argv(f"{base}/", connections=4, streams=16, duration=seconds)
        _h2.run_h2load(argv, seconds + CLIENT_GRACE)


def warm_up(server: RunningServer, seconds: float) -> None:
    """Touch every HTTP route once, then (for ``seconds`` >= 1) a short hello-world load."""
    for path in ("/", "/10k", "/stream", "/json"):
        _touch(server, "GET", path)
    _touch(server, "POST", "/echo", b"x" * 1024 * 1024)
    if seconds >= 1 and wrk_missing() is None:
        _run_client(
            ["wrk", "-t1", "-c16", f"-d{round(seconds)}s", "-s", str(LUA / "get.lua"),
             f"http://{server.host}:{server.port}/"],
            seconds + CLIENT_GRACE,
        )  # fmt: skip
