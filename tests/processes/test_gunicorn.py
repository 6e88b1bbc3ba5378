"""The real Gunicorn running our worker classes: HTTP, WebSocket, graceful stop, limits."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from process_helpers import HERE, POLL
from websockets.sync.client import connect as ws_connect

pytest.importorskip("gunicorn")


#: Port 0, our test apps, and no control socket (its default path is one per user).
GUNICORN_ARGS = ("--chdir", str(HERE), "--bind", "127.0.0.1:0", "--no-control-socket")


class Gunicorn:
    def __init__(self, *args: str) -> None:
        self.log_file = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *GUNICORN_ARGS, *args],
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def log(self) -> str:
        return Path(self.log_file.name).read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 20.0, count: int = 1) -> list[re.Match[str]]:
        deadline = time.monotonic() + timeout
        while len(matches := list(re.finditer(pattern, self.log))) < count:
            assert time.monotonic() < deadline, f"{pattern!r} not in:\n{self.log}"
            assert self.process.poll() is None, f"gunicorn exited:\n{self.log}"
            time.sleep(POLL)
        return matches

    @property
    def port(self) -> int:
        return int(self.wait_for(r"Listening at: http://127\.0\.0\.1:(\d+)")[0][1])

    def request(self, path: str = "/") -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as client:
            client.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            response = b""
            while chunk := client.recv(4096):
                response += chunk
            return response


@contextmanager
def gunicorn(*args: str) -> Iterator[Gunicorn]:
    server = Gunicorn(*args)
    try:
        yield server
    finally:
        try:
            os.killpg(server.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.process.wait(10)
        server.log_file.close()


def booted(server: Gunicorn, workers: int = 1) -> None:
    server.wait_for(r"Booting worker with pid", count=workers)
    deadline = time.monotonic() + 20
    while True:  # the worker listens on the arbiter's socket from the start: poll it
        try:
            if server.request().startswith(b"HTTP/1.1 200 "):
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, server.log
        time.sleep(POLL)


@pytest.mark.parametrize("worker", ["TrioWorker", "AsyncioWorker"])
def test_gunicorn_serves_http_and_websocket_then_stops_gracefully(worker: str) -> None:
    with gunicorn(
        "-k", f"trio_asgi.workers.{worker}", "--graceful-timeout", "10", "procapp:app"
    ) as g:
        booted(g)
        response = g.request()
        assert response.startswith(b"HTTP/1.1 200 ")
        assert b"server: trio-asgi" in response.lower()
        with ws_connect(f"ws://127.0.0.1:{g.port}/ws", open_timeout=10) as ws:
            ws.send("hello")
            assert ws.recv(timeout=10) == "hello"
        # Graceful: a request in flight when SIGTERM arrives is answered.
        with socket.create_connection(("127.0.0.1", g.port), timeout=10) as client:
            client.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            time_sent = time.monotonic()
            g.wait_for("slow request started")
            g.process.send_signal(signal.SIGTERM)
            response = client.recv(4096)
            assert response.startswith(b"HTTP/1.1 200 "), g.log
            assert time.monotonic() - time_sent < 10
        assert g.process.wait(20) == 0


def test_gunicorn_max_requests_replaces_the_worker() -> None:
    args = ("--max-requests", "5", "--access-logfile", "-")
    with gunicorn("-k", "trio_asgi.workers.TrioWorker", *args, "procapp:app") as g:
        booted(g)
        pids = set()
        deadline = time.monotonic() + 30
        while len(pids) < 2:
            assert time.monotonic() < deadline, g.log
            response = g.request()
            assert response.startswith(b"HTTP/1.1 200 "), g.log
            pids.add(response.split(b"\r\n")[-4])  # chunked: size, PID, 0, end
        assert "Max requests reached" in g.log
        assert '"GET / HTTP/1.1" 200 OK' in g.log  # our access lines, Gunicorn's handler


def test_gunicorn_sigquit_stops_at_once() -> None:
    with gunicorn(
        "-k", "trio_asgi.workers.TrioWorker", "--graceful-timeout", "30", "procapp:app"
    ) as g:
        booted(g)
        with socket.create_connection(("127.0.0.1", g.port), timeout=10) as client:
            client.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
            g.wait_for("hanging request started")
            started = time.monotonic()  # SIGTERM would wait for it up to 30 s
            g.process.send_signal(signal.SIGQUIT)
            assert g.process.wait(20) == 0
            assert time.monotonic() - started < 10


def test_the_docs_worker_subclass_applies_its_config_kwargs() -> None:
    examples = HERE.parent.parent / "docs" / "examples"
    assert (examples / "gunicorn_worker.py").is_file()
    with gunicorn(
        "--pythonpath", str(examples), "-k", "gunicorn_worker.MyWorker", "procapp:app"
    ) as g:
        booted(g)
        assert b"x-served-by: trio-asgi under gunicorn" in g.request().lower()


def test_gunicorn_sighup_replaces_the_worker_gracefully() -> None:
    with gunicorn("-k", "trio_asgi.workers.TrioWorker", "procapp:app") as g:
        booted(g)
        old = g.request().split(b"\r\n")[-4]
        g.process.send_signal(signal.SIGHUP)  # the arbiter: new workers, SIGTERM to old ones
        g.wait_for(r"Booting worker with pid", count=2)
        g.wait_for(rf"Worker exiting \(pid: {old.decode()}\)")
        assert g.request().split(b"\r\n")[-4] != old
