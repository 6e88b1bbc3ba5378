"""Real server processes for the process tests: start, watch the log, request, stop.

Nothing here sleeps to synchronise: every wait polls the log (or a process) against
a deadline, so a slow, busy machine only makes the tests slower, not wrong.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
POLL = 0.02


class ServerProcess:
    """``python -m trio_asgi ARGS`` in its own session, its output in a file."""

    def __init__(
        self,
        args: Sequence[str],
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        *,
        wrapper: Sequence[str] = (),
        pass_fds: Sequence[int] = (),
    ) -> None:
        self.log_file = tempfile.NamedTemporaryFile(prefix="trio-asgi-", suffix=".log")  # noqa: SIM115
        environ = {k: v for k, v in os.environ.items() if k != "WEB_CONCURRENCY"}
        environ.update({"NO_COLOR": "1", **(env or {})})
        self.process = subprocess.Popen(
            [*wrapper, sys.executable, "-m", "trio_asgi", "--app-dir", str(HERE), *args],
            pass_fds=pass_fds,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            env=environ,
            cwd=cwd,
            start_new_session=True,
        )

    @property
    def log(self) -> str:
        return Path(self.log_file.name).read_text(errors="replace")

    def wait_for(
        self, pattern: str, timeout: float = 15.0, *, count: int = 1
    ) -> list[re.Match[str]]:
        """Wait until ``pattern`` matches ``count`` times in the log; the matches."""
        deadline = time.monotonic() + timeout
        while True:
            matches = list(re.finditer(pattern, self.log))
            if len(matches) >= count:
                return matches
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{pattern!r} x{count} not in the log after {timeout}s:\n{self.log}"
                )
            if (
                self.process.poll() is not None
                and not self._group_alive()  # workers outliving a killed supervisor log on
                and len(list(re.finditer(pattern, self.log))) < count
            ):
                raise AssertionError(
                    f"exited ({self.process.returncode}) before {pattern!r}:\n{self.log}"
                )
            time.sleep(POLL)

    def _group_alive(self) -> bool:
        """Whether any process of the server's session is left (the workers, say)."""
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    @property
    def port(self) -> int:
        return int(self.wait_for(r"Listening on http://127\.0\.0\.1:(\d+)")[0][1])

    def ready_pids(self, count: int, timeout: float = 20.0) -> list[int]:
        matches = self.wait_for(r"worker (\d+) is ready", timeout, count=count)
        return [int(m[1]) for m in matches]

    def get(self, path: str = "/", timeout: float = 10.0) -> tuple[int, str, dict[str, str]]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            headers = {k.lower(): v for k, v in response.getheaders()}
            return response.status, response.read().decode(), headers
        finally:
            connection.close()

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def kill_all(self) -> None:
        """Clean up whatever is left: the whole session this test started."""
        # Also after the supervisor exited: a worker it left behind would be a bug to see.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.log_file.close()


@contextmanager
def server(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    wrapper: Sequence[str] = (),
    pass_fds: Sequence[int] = (),
) -> Iterator[ServerProcess]:
    proc = ServerProcess(args, env, cwd, wrapper=wrapper, pass_fds=pass_fds)
    try:
        yield proc
    finally:
        proc.kill_all()


@dataclass(frozen=True)
class WrkResult:
    requests: int
    socket_errors: dict[str, int]
    non_2xx: int
    output: str


def wrk(port: int, seconds: float, connections: int = 32, path: str = "/") -> subprocess.Popen[str]:
    """Start wrk against the server; finish it with :func:`wrk_result`."""
    assert shutil.which("wrk"), "wrk must be installed (.ci/run installs it)"
    return subprocess.Popen(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}{path}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wrk_result(
    run: subprocess.Popen[str], timeout: float = 30.0, *, stop: bool = False
) -> WrkResult:
    """wrk's counts once it finishes; ``stop``: end it now (SIGINT makes it report)."""
    if stop:
        run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=timeout)
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    match = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if match:
        errors = dict(zip(errors, map(int, match.groups()), strict=True))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    requests = re.search(r"(\d+) requests in", output)
    assert requests, output
    return WrkResult(int(requests[1]), errors, int(non_2xx[1]) if non_2xx else 0, output)
