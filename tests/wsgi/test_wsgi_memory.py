"""A 128 MiB upload echoed by a streaming WSGI app, while the echo streams back, keeps
the server's peak RSS growth under 64 MiB (the issue's bar; Uvicorn's WSGI mode grows
258 MiB on this). The server runs in its own process so its RSS is its own; the peak
is the kernel's high-water mark (VmHWM), reset after a warm-up request."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
UPLOAD = 128 * MIB
LIMIT = 64 * MIB


def _status_kib(pid: int, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    assert match is not None
    return int(match[1]) * 1024


def _reset_peak(pid: int) -> None:
    """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


async def _echo_through(port: int, size: int) -> int:
    """Send ``size`` bytes (chunked) while reading the echo; return the body bytes read."""
    block = b"\xab" * MIB
    received = 0
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:

        async def upload() -> None:
            await stream.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
            for _ in range(size // MIB):
                await stream.send(block)

        async with anyio.create_task_group() as tg:
            tg.start_soon(upload)
            while received < size:
                received += len(await stream.receive(1 << 20))
    return received


@pytest.fixture
def anyio_backend() -> str:
    return "trio"  # the client; the server's loop is the subprocess's own


@pytest.mark.slow
async def test_streamed_echo_keeps_rss_bounded() -> None:
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, before any waiting
        [
            sys.executable,
            "-m",
            "trio_asgi",
            "wsgi_memory_apps:echo",
            "--interface",
            "wsgi",
            "--port",
            "0",
            "--no-access-log",
            "--app-dir",
            str(Path(__file__).parent),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        port = 0
        for line in process.stderr:
            if match := re.search(r"Listening on http://127\.0\.0\.1:(\d+)", line):
                port = int(match[1])
                break
        assert port, "the server did not start"
        with anyio.fail_after(120):
            await _echo_through(port, MIB)  # warm-up: threads, buffers, imports
            baseline = _status_kib(process.pid, "VmRSS")
            _reset_peak(process.pid)
            received = await _echo_through(port, UPLOAD)
        assert received >= UPLOAD
        growth = _status_kib(process.pid, "VmHWM") - baseline
        assert growth < LIMIT, f"peak RSS grew {growth / MIB:.1f} MiB"
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()
