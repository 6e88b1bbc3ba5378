"""What a worker process is told when it starts, and the messages it sends back.

The supervisor and a worker share a unix socket pair. The supervisor writes one
:class:`WorkerSpec` (pickled, length-prefixed) and nothing else; the worker then
sends short lines: ``ready`` once it serves, ``beat N`` (requests served so far)
every heartbeat interval, ``recycle`` once its request limit is reached. A worker
whose socket reaches end-of-file has lost its supervisor and drains.
"""

from __future__ import annotations

import pickle
import socket
import struct
from dataclasses import dataclass

from .._config import Config

#: The module a worker process runs (``python -m ...``).
WORKER_MODULE = "trio_asgi._supervisor._worker"
_LENGTH = struct.Struct("!I")
#: Largest spec accepted: a Config and a few names, far below this.
MAX_SPEC_SIZE = 1 << 20

READY = b"ready"
BEAT = b"beat"
RECYCLE = b"recycle"


@dataclass(frozen=True)
class AppTarget:
    """Where the worker finds the app, as the command line said."""

    target: str
    factory: bool = False
    app_dir: str = "."


@dataclass(frozen=True)
class LogSettings:
    level: str | None = "info"
    config_file: str | None = None
    use_colors: bool | None = None
    format: str = "text"


@dataclass(frozen=True)
class WorkerSpec:
    config: Config
    app: AppTarget
    log: LogSettings
    #: Listening sockets inherited from the supervisor (already bound).
    socket_fds: tuple[int, ...]
    #: With ``--reuse-port``: addresses to bind a socket of its own for (and no fds).
    reuse_port_addresses: tuple[str, ...] = ()
    #: Ask to be replaced after this many requests (jitter already added).
    max_requests: int | None = None
    #: Seconds between heartbeats.
    heartbeat_interval: float = 1.0
    #: Whether a supervisor listens for heartbeats (not under ``--reload``).
    supervised: bool = True


def spec_bytes(spec: WorkerSpec) -> bytes:
    """The spec as the supervisor writes it: a length, then the pickle."""
    data = pickle.dumps(spec)
    return _LENGTH.pack(len(data)) + data


def receive_spec(sock: socket.socket) -> WorkerSpec:
    """Read the spec (blocking; the worker does nothing else before it has one)."""
    (size,) = _LENGTH.unpack(_read_exactly(sock, _LENGTH.size))
    if size > MAX_SPEC_SIZE:
        raise ValueError(f"worker spec of {size} bytes is too large")
    spec = pickle.loads(_read_exactly(sock, size))
    if not isinstance(spec, WorkerSpec):
        raise TypeError(f"expected a WorkerSpec, got {type(spec).__name__}")
    return spec


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("the supervisor closed the control socket")
        data += chunk
    return data


def parse_message(line: bytes) -> tuple[bytes, int]:
    """``(kind, number)`` of one message line; number is 0 when it has none."""
    kind, _, rest = line.strip().partition(b" ")
    return kind, int(rest) if rest.isdigit() else 0
