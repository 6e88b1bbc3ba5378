"""HTTP/2 load with ``h2load``: its command line, its report, and an HTTP/2 readiness probe.

The HTTP/2 rows use cleartext HTTP/2 by prior knowledge (h2load's default for an
``http://`` URL): a server that serves HTTP/2 only over TLS or by ``Upgrade: h2c`` gets
an "n/a" in those rows rather than a figure for a different protocol. h2load runs
for a fixed time (``-D``) with ``-c`` connections of ``-m`` concurrent streams each;
a run in which any request failed, errored, timed out or got a non-2xx status is a
failed run, not a figure (a server that resets streams would otherwise look fast).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: RFC 9113 section 3.4: what a client sends first on a prior-knowledge connection.
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: An empty SETTINGS frame (length 0, type 4, no flags, stream 0).
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_SETTINGS_TYPE = 4

_FINISHED = re.compile(r"^finished in [\d.]+\w*, ([\d.]+) req/s", re.MULTILINE)
_REQUESTS = re.compile(
    r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
    r"(\d+) errored, (\d+) timeout",
    re.MULTILINE,
)
_STATUS = re.compile(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", re.MULTILINE)
#: "time for request:  min  max  mean  sd  +/- sd", each with its unit.
_TIME_FOR_REQUEST = re.compile(
    r"^time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)",
    re.MULTILINE,
)
_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class H2loadSummary:
    """What one h2load run reports: throughput, the request counts, the mean latency."""

    req_per_s: float
    done: int
    succeeded: int
    #: Failed (4xx and 5xx included), errored and timed-out requests, and 3xx responses.
    errors: int
    mean_ms: float | None


def h2load_missing() -> str | None:
    """None if h2load is installed, else how to install it."""
    if shutil.which("h2load"):
        return None
    return "n/a: h2load not installed (Debian/Ubuntu: sudo apt-get install -y nghttp2-client)"


def parse_h2load(output: str) -> H2loadSummary | None:
    """The summary of h2load's text report; None when the report is not there."""
    finished, requests = _FINISHED.search(output), _REQUESTS.search(output)
    if finished is None or requests is None:
        return None
    _, _, done, succeeded, failed, errored, timeout = (int(n) for n in requests.groups())
    status = _STATUS.search(output)
    # h2load counts 4xx and 5xx as failed already, and 3xx as succeeded: a redirect is
    # no hello world either.
    redirects = int(status.group(2)) if status else 0
    timing = _TIME_FOR_REQUEST.search(output)
    mean_ms = float(timing.group(5)) * _TO_MS[timing.group(6)] if timing else None
    return H2loadSummary(
        req_per_s=float(finished.group(1)),
        done=done,
        succeeded=succeeded,
        errors=failed + errored + timeout + redirects,
        mean_ms=mean_ms,
    )


_UPLOADS: dict[int, Path] = {}


def upload_file(size: int) -> Path:
    """A file of ``size`` bytes for h2load's ``-d`` (made once per size per run)."""
    path = _UPLOADS.get(size)
    if path is None or not path.exists():
        with tempfile.NamedTemporaryFile(prefix="bench-upload-", delete=False) as file:
            file.write(b"u" * size)
        path = _UPLOADS[size] = Path(file.name)
    return path


def h2load_argv(
    url: str,
    *,
    connections: int,
    streams: int,
    duration: float = 0.0,
    requests: int = 0,
    upload: int = 0,
) -> list[str]:
    """h2load for ``duration`` seconds (or ``requests`` requests, if given).

    ``upload``: bytes each request POSTs (0: GET).
    """
    argv = ["h2load", "-c", str(connections), "-m", str(streams), "-t", "1"]
    if requests:
        argv += ["-n", str(requests)]
    else:
        argv += ["-D", str(max(1, round(duration)))]
    if upload:
        argv += ["-d", str(upload_file(upload))]
    return [*argv, url]


def run_h2load(argv: list[str], timeout: float) -> tuple[H2loadSummary | None, str]:
    """Run h2load; its summary, or None and why there is none."""
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, f"failed: h2load did not finish within {timeout:.0f} s"
    output = done.stdout.decode(errors="replace")
    summary = parse_h2load(output)
    if summary is None:
        lines = (done.stderr.decode(errors="replace") or output).strip().splitlines()
        return None, f"failed: h2load exited {done.returncode}: {lines[-1][:160] if lines else ''}"
    return summary, ""


def answers_h2(host: str, port: int) -> bool:
    """True when the server answers the HTTP/2 preface with its SETTINGS frame."""
    try:
        with socket.create_connection((host, port), timeout=2.0) as sock:
            sock.sendall(PREFACE + EMPTY_SETTINGS)
            head = b""
            while len(head) < 9:
                chunk = sock.recv(9 - len(head))
                if not chunk:
                    return False
                head += chunk
            return head[3] == _SETTINGS_TYPE
    except OSError:
        return False
