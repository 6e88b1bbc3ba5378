"""Start the trio-asgi command the way a service manager does, and stop it the same way.

``socket_activation()`` hands the server a listening socket, as systemd socket
activation does (``--fd``); ``unix_socket()`` serves on a unix socket for a reverse
proxy (``--uds``). Both stop the server with SIGTERM, as ``systemctl stop``,
``docker stop`` and Kubernetes do. Run it from this directory:
``python run_as_a_service.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile

import httpx

HERE = os.path.dirname(os.path.abspath(__file__))
COMMAND = [sys.executable, "-m", "trio_asgi", "deploy_app:app", "--app-dir", HERE]


def socket_activation() -> None:
    # What systemd does for a .socket unit: bind and listen before the server starts.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    fd = listener.fileno()
    with (
        listener,
        subprocess.Popen(
            [*COMMAND, "--fd", str(fd), "--root-path", "/api"], pass_fds=[fd]
        ) as server,
    ):
        # The socket listens already, so this request waits in its backlog until the
        # server accepts it: no need to wait for the server to be ready.
        response = httpx.get(f"http://127.0.0.1:{port}/hello", timeout=30)
        print(response.text, end="")
        server.send_signal(signal.SIGTERM)  # graceful shutdown
        print("exit code:", server.wait(timeout=30))


def unix_socket(directory: str) -> None:
    path = os.path.join(directory, "app.sock")
    with subprocess.Popen([*COMMAND, "--uds", path], stderr=subprocess.PIPE, text=True) as server:
        assert server.stderr is not None
        # The server logs "Listening on unix:..." once the socket accepts connections.
        for line in server.stderr:
            if "Listening on" in line:
                break
        with httpx.Client(transport=httpx.HTTPTransport(uds=path)) as client:
            print(client.get("http://localhost/hello").text, end="")
        server.send_signal(signal.SIGTERM)
        print("exit code:", server.wait(timeout=30))
    print("socket file removed:", not os.path.exists(path))


if __name__ == "__main__":
    socket_activation()
    with tempfile.TemporaryDirectory() as directory:
        unix_socket(directory)
