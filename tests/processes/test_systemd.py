"""systemd socket activation and sd_notify, with a real server process.

systemd sets ``LISTEN_PID`` to the service's own PID after forking; here a shell
does the same (``$$`` is bash's PID, which ``exec`` keeps) and moves the
socket to descriptor 3. The notify socket is a datagram socket the test binds.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from process_helpers import server

from trio_asgi._systemd import Notifier, listen_fds


def activation_wrapper(fd: int, name: str) -> list[str]:
    script = f'LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES={name} exec "$@" 3<&{fd}'
    return ["bash", "-c", script, "bash"]  # dash takes single-digit descriptors only


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(20)
        yield sock, path


def messages_until(sock: socket.socket, field: str) -> list[str]:
    """Every datagram received until one has ``field`` (each bounded by the timeout)."""
    seen: list[str] = []
    while field not in seen:
        seen.extend(sock.recv(4096).decode().split("\n"))
    return seen


@pytest.mark.parametrize("workers", [(), ("--workers", "2")], ids=["one-process", "workers"])
def test_activated_socket_is_served_and_systemd_hears_ready_then_stopping(
    notify_socket: tuple[socket.socket, str], workers: tuple[str, ...]
) -> None:
    notify, path = notify_socket
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        wrapper = activation_wrapper(listener.fileno(), "web")
        env = {"NOTIFY_SOCKET": path}
        args = (*workers, "procapp:app")
        with server(*args, env=env, wrapper=wrapper, pass_fds=[listener.fileno()]) as proc:
            listener.close()  # the server holds the only listening copy now
            assert "READY=1" in messages_until(notify, "READY=1"), proc.log
            proc.wait_for(r"Socket activation: fd 3 \(web\)")
            with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
                client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert client.recv(4096).startswith(b"HTTP/1.1 200 ")
            assert "127.0.0.1:8000" not in proc.log  # not the default bind
            proc.signal(signal.SIGTERM)
            assert "STOPPING=1" in messages_until(notify, "STOPPING=1")
            assert proc.wait(20) == 0
            # The workers were not told to notify: systemd only listens to the main PID.
            assert "sd_notify" not in proc.log


def test_explicit_binds_win_over_activated_sockets(tmp_path: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        unused.listen()
        wrapper = activation_wrapper(unused.fileno(), "web")
        with server(
            "--port", "0", "procapp:app", wrapper=wrapper, pass_fds=[unused.fileno()]
        ) as proc:
            assert proc.get()[0] == 200
            assert "Socket activation" not in proc.log


def test_sockets_for_another_process_are_ignored_and_the_variables_removed() -> None:
    env = {"LISTEN_FDS": "2", "LISTEN_PID": "1", "LISTEN_FDNAMES": "a:b", "OTHER": "x"}
    assert listen_fds(env) == []
    assert env == {"OTHER": "x"}


def test_abstract_notify_socket_and_no_socket() -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        name = f"trio-asgi-test-{time.monotonic_ns()}"
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        env = {"NOTIFY_SOCKET": "@" + name}
        Notifier.from_environ(env).notify("READY=1", "STATUS=ok")
        assert sock.recv(100) == b"READY=1\nSTATUS=ok"
        assert env == {}
    Notifier.from_environ({}).notify("READY=1")  # nothing asked for: nothing sent
