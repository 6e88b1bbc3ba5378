"""``--loop auto`` (the default) end to end: asyncio-only frameworks served by the command.

Each app is started by ``python -m trio_asgi APP`` with no ``--loop``, in a real
process, and used over real sockets with httpx and the websockets client: the startup
line says which loop was picked and why, and the framework works on it.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import websockets.sync.client

HERE = Path(__file__).resolve().parent
TIMEOUT = 20.0


class Server:
    """A ``python -m trio_asgi`` process; its stderr read line by line on a thread."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
        env.pop("DJANGO_SETTINGS_MODULE", None)  # the project's asgi.py sets its own
        command = [sys.executable, "-m", "trio_asgi", "--app-dir", str(HERE), "--port", "0"]
        self.process = subprocess.Popen(
            [*command, *args],
            env=env,
            text=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, predicate: Callable[[str], bool]) -> str:
        while True:
            try:
                line = self._queue.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"no such line in {TIMEOUT}s; got {self.lines}") from None
            if line is None:
                raise AssertionError(f"the server exited; got {self.lines}")
            self.lines.append(line)
            if predicate(line):
                return line

    def url(self) -> str:
        line = self.wait_for(lambda line: "Listening on http://" in line)
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match is not None
        return match[0]

    def stop(self) -> list[str]:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=TIMEOUT)
        while (line := self._queue.get(timeout=TIMEOUT)) is not None:
            self.lines.append(line)
        assert code == 0, self.lines
        return self.lines


@contextmanager
def command(app: str) -> Iterator[Server]:
    server = Server(app)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
        server.process.wait()
        server._thread.join(TIMEOUT)
        assert server.process.stderr is not None
        server.process.stderr.close()


def test_django_through_its_asgi_py_gets_asyncio() -> None:
    with command("django_project.asgi:application") as server:
        url = server.url()
        assert "INFO     Using the asyncio loop: the app imports django" in server.lines
        response = httpx.get(f"{url}/async/7?tag=a", timeout=TIMEOUT)
        assert response.status_code == 200
        assert response.json()["tags"] == ["a"]
        assert response.json()["backend"] == "asyncio"
        assert httpx.get(f"{url}/sync", timeout=TIMEOUT).status_code == 200
        lines = server.stop()
    assert not any("ERROR" in line or "Traceback" in line for line in lines)


def test_django_channels_http_view_and_websocket_consumer_get_asyncio() -> None:
    with command("channels_project.asgi:application") as server:
        url = server.url()
        assert any(
            line.startswith("INFO     Using the asyncio loop: the app imports")
            for line in server.lines
        )
        response = httpx.get(f"{url}/async/3", timeout=TIMEOUT)
        assert (response.status_code, response.json()["backend"]) == (200, "asyncio")
        ws_url = url.replace("http://", "ws://") + "/ws/echo"
        with websockets.sync.client.connect(ws_url, open_timeout=TIMEOUT) as ws:
            ws.send("hi")
            assert ws.recv(timeout=TIMEOUT) == "echo over ws: hi"
        lines = server.stop()
    assert not any("ERROR" in line or "Traceback" in line for line in lines)


def test_quart_gets_asyncio() -> None:
    with command("quart_app:app") as server:
        url = server.url()
        assert "INFO     Using the asyncio loop: the app imports quart" in server.lines
        response = httpx.get(f"{url}/hello/you", timeout=TIMEOUT)
        assert (response.status_code, response.text) == (200, "hello you from quart")
        with websockets.sync.client.connect(url.replace("http", "ws") + "/ws") as ws:
            ws.send("ping")
            assert ws.recv(timeout=TIMEOUT) == "quart echo: ping"
        lines = server.stop()
    assert not any("ERROR" in line or "Traceback" in line for line in lines)


def test_a_plain_asgi_app_gets_trio() -> None:
    with command("autobahn_app:app") as server:
        server.url()
        assert any(line.startswith("INFO     Using the trio loop: ") for line in server.lines)
        server.stop()
