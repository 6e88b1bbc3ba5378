"""The servers under test: their command lines, and starting and stopping them.

Every server is one worker process on 127.0.0.1 running ``bench.apps:app``
with access logs off. A server that is not installed, rejects its command line
or fails to answer in time is not an error of the harness: :class:`StartFailure`
carries the reason, and the report shows it in that server's rows.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench._h2 import answers_h2
from bench._proc import free_port, process_tree

REPO = Path(__file__).resolve().parent.parent
APP = "bench.apps:app"
KEEP_ALIVE = "300"  # long enough to hold idle connections through the idle workloads
START_TIMEOUT = 30.0
#: A checkout of trio-asgi to compare against in the same run (the ``trio-asgi-ref`` row):
#: "no figure may get worse" is then a ratio within one run, not across two runs.
REF_ENV = "TRIO_ASGI_BENCH_REF"
STOP_TIMEOUT = 5.0
# Signs in a server's output that it rejected its command line (argparse, click).
_USAGE_ERRORS = ("unrecognized arguments", "no such option", "invalid choice", "error: argument")

ALL_WORKLOADS: frozenset[str] | None = None
# The ceiling answers any request head with the hello response: no bodies, no WebSocket.
CEILING_WORKLOADS = frozenset(
    {"hello_1", "hello_64", "hello_256", "pipeline_16", "idle_1k", "idle_10k"}
)
# The WSGI rows run bench/wsgi_apps.py, on the WSGI servers only (and those run nothing else).
WSGI_WORKLOADS = frozenset({"wsgi_hello_64", "wsgi_upload_1m", "wsgi_download_1m"})
# The FIFO diagnostic is about latency under concurrent keep-alive load only.
LATENCY_WORKLOADS = frozenset({"hello_64", "hello_256"})
# Run only by the servers that list them: the multi-process configurations.
MULTI_WORKER_WORKLOADS = frozenset({"hello_256_workers"})
# Cleartext HTTP/2 by prior knowledge; a server that does not speak it gets its ``no_h2``.
H2_WORKLOADS = frozenset({"h2_hello", "h2_download_1m", "h2_upload_1m", "h2_idle_1k"})
NO_H2 = "n/a: no cleartext HTTP/2 (prior knowledge)"


class StartFailure(Exception):
    """The server could not be started; ``str()`` is the note shown in its rows."""


@dataclass(frozen=True)
class ServerSpec:
    """How to run one server.

    Attributes:
        name: the row label.
        argv: the command, split on whitespace; ``{python}``, ``{host}``, ``{port}``,
            ``{app}``, ``{ceiling}`` and ``{fifo}`` (the paths of ceiling.py and
            trio_fifo.py) are filled in.
        requires: modules that must be importable, else the rows say "not installed".
        optional_args: dropped, with a note, if the server rejects them as unknown.
        rejected_note: the note when the server rejects ``argv`` itself (a missing feature).
        workloads: the workload keys this server can run; None for all.
        packages: distributions whose versions the report lists.
        no_h2: why the HTTP/2 rows are "n/a" for it; None when it serves cleartext HTTP/2.
        probe: how to tell it is ready: an HTTP/1.1 ``GET /``, or (an HTTP/2-only
            server) the HTTP/2 preface answered with SETTINGS.
    """

    name: str
    argv: str
    requires: tuple[str, ...]
    optional_args: str = ""
    rejected_note: str = "failed: the server rejected its command line"
    workloads: frozenset[str] | None = ALL_WORKLOADS
    packages: tuple[str, ...] = ()
    no_h2: str | None = NO_H2
    probe: str = "http/1.1"

    def runs(self, workload: str) -> bool:
        if (workload in WSGI_WORKLOADS) != (self.workloads is WSGI_WORKLOADS):
            return False  # WSGI rows and ASGI rows run different apps
        if self.workloads is None:
            return workload not in MULTI_WORKER_WORKLOADS
        return workload in self.workloads

    def h2_note(self, workload: str) -> str | None:
        """Why this server gets "n/a" in ``workload`` (an HTTP/2 row it cannot run), or None."""
        return self.no_h2 if workload in H2_WORKLOADS else None

    def command(self, host: str, port: int, *, optional: bool) -> list[str]:
        fields = {
            "python": sys.executable,
            "host": host,
            "port": str(port),
            "app": APP,
            "wsgi_app": "bench.wsgi_apps:app",
            "wsgi_threads": "8",  # bench.wsgi_apps.THREADS
            "ceiling": str(REPO / "bench" / "ceiling.py"),
            "fifo": str(REPO / "bench" / "trio_fifo.py"),
            "ref": os.environ.get(REF_ENV, ""),
            "repo": str(REPO),
        }
        words = self.argv.split() + (self.optional_args.split() if optional else [])
        return [word.format(**fields) for word in words]


_TRIO_ASGI = (
    "{python} -m trio_asgi {app} --host {host} --port {port} --no-access-log --log-level warning"
)
_UVICORN = (
    "{python} -m uvicorn {app} --host {host} --port {port} --no-access-log --log-level warning"
    f" --timeout-keep-alive {KEEP_ALIVE}"
)
# -w 0: Hypercorn serves in its own process instead of spawning one worker.
_HYPERCORN = f"-b {{host}}:{{port}} -w 0 --log-level warning --keep-alive {KEEP_ALIVE}"
_LOOP_NOTE = "n/a: not supported yet (--loop rejected)"

SERVERS: tuple[ServerSpec, ...] = (
    ServerSpec(
        "ceiling",
        "{python} {ceiling} --host {host} --port {port}",
        requires=("trio",),
        workloads=CEILING_WORKLOADS,
        packages=("trio",),
    ),
    ServerSpec(
        "trio-asgi",
        _TRIO_ASGI,
        requires=("trio_asgi.__main__",),
        optional_args=f"--timeout-keep-alive {KEEP_ALIVE}",
        packages=("trio-asgi", "trio", "h11", "wsproto", "h2"),
        no_h2=None,
    ),
    ServerSpec(
        # Another checkout of trio-asgi, run from its own directory so that neither
        # ``-m``'s current directory nor PYTHONPATH picks our trio_asgi; the app is ours
        # (``--app-dir``), so both rows serve the same routes (an older checkout's
        # bench/apps.py may lack one: a 404 is not a figure).
        "trio-asgi-ref",
        _TRIO_ASGI.replace("{python}", "env -C {ref} PYTHONPATH={ref} {python}")
        + " --app-dir {repo}",
        requires=("trio_asgi.__main__",),
        optional_args=f"--timeout-keep-alive {KEEP_ALIVE}",
        no_h2=None,
    ),
    ServerSpec(
        # The same server with its fast paths off: every byte through anyio's streams.
        # The trio-asgi / trio-asgi-anyio ratio is what using trio directly saves.
        "trio-asgi-anyio",
        f"env TRIO_ASGI_FAST_PATH=0 {_TRIO_ASGI}",
        requires=("trio_asgi.__main__",),
        optional_args=f"--timeout-keep-alive {KEEP_ALIVE}",
        no_h2=None,
    ),
    ServerSpec(
        # A diagnostic, not a configuration: trio-asgi with trio's batches run in FIFO
        # order (bench/trio_fifo.py), to show in the same run what the p99 on trio owes
        # to trio's randomised batch order.
        "trio-asgi-fifo",
        _TRIO_ASGI.replace("-m trio_asgi", "{fifo}"),
        requires=("trio_asgi.__main__",),
        optional_args=f"--timeout-keep-alive {KEEP_ALIVE}",
        workloads=LATENCY_WORKLOADS,
    ),
    ServerSpec(
        "trio-asgi-asyncio",
        f"{_TRIO_ASGI} --loop asyncio",
        requires=("trio_asgi.__main__",),
        optional_args=f"--timeout-keep-alive {KEEP_ALIVE}",
        rejected_note=_LOOP_NOTE,
        no_h2=None,
    ),
    ServerSpec(
        "trio-asgi-uvloop",
        f"{_TRIO_ASGI} --loop uvloop",
        requires=("trio_asgi.__main__", "uvloop"),
        optional_args=f"--timeout-keep-alive {KEEP_ALIVE}",
        rejected_note=_LOOP_NOTE,
        packages=("uvloop",),
        no_h2=None,
    ),
    ServerSpec(
        "uvicorn-h11",
        f"{_UVICORN} --http h11 --loop asyncio --ws wsproto",
        requires=("uvicorn", "h11", "wsproto"),
        packages=("uvicorn",),
        no_h2="n/a: no HTTP/2",
    ),
    ServerSpec(
        "uvicorn-httptools",
        f"{_UVICORN} --http httptools --loop uvloop --ws websockets",
        requires=("uvicorn", "httptools", "uvloop", "websockets"),
        packages=("httptools", "websockets"),
        no_h2="n/a: no HTTP/2",
    ),
    ServerSpec(
        "hypercorn-trio",
        f"{{python}} -m hypercorn {{app}} -k trio {_HYPERCORN}",
        requires=("hypercorn", "trio"),
        packages=("hypercorn",),
        no_h2=None,
    ),
    ServerSpec(
        "hypercorn-asyncio",
        f"{{python}} -m hypercorn {{app}} -k asyncio {_HYPERCORN}",
        requires=("hypercorn",),
        no_h2=None,
    ),
    ServerSpec(
        "anycorn-trio",
        f"{{python}} -m anycorn {{app}} -k trio {_HYPERCORN}",
        requires=("anycorn", "trio"),
        packages=("anycorn",),
        no_h2=None,
    ),
    ServerSpec(
        "granian",
        "{python} -m granian --interface asgi --host {host} --port {port} --workers 1"
        " --runtime-threads 1 --http 1 --no-access-log --log-level warning {app}"
        # Its default backpressure (1,024 requests in progress) stalls idle_10k.
        " --backpressure 16384",
        requires=("granian",),
        packages=("granian",),
        no_h2="n/a: served with --http 1 here; its HTTP/2 is the granian-h2 row",
    ),
    ServerSpec(
        # Granian's HTTP/2 mode (--http 2 answers HTTP/2 only): the HTTP/2 rows alone.
        "granian-h2",
        "{python} -m granian --interface asgi --host {host} --port {port} --workers 1"
        " --runtime-threads 1 --http 2 --no-access-log --log-level warning {app}"
        " --backpressure 16384",
        requires=("granian",),
        workloads=H2_WORKLOADS,
        no_h2=None,
        probe="h2",
    ),
    # Two worker processes each (issue 15): our supervisor against Uvicorn's and
    # Gunicorn's, on the multi-worker workload only.
    ServerSpec(
        "trio-asgi-w2",
        f"{_TRIO_ASGI} --workers 2",
        requires=("trio_asgi.__main__",),
        optional_args=f"--timeout-keep-alive {KEEP_ALIVE}",
        workloads=MULTI_WORKER_WORKLOADS,
        rejected_note="n/a: --workers not supported yet",
    ),
    ServerSpec(
        "uvicorn-h11-w2",
        f"{_UVICORN} --http h11 --loop asyncio --ws wsproto --workers 2",
        requires=("uvicorn", "h11", "wsproto"),
        workloads=MULTI_WORKER_WORKLOADS,
    ),
    ServerSpec(
        # The worker class most Gunicorn users run (httptools and uvloop when installed).
        "gunicorn-uvicorn-w2",
        "{python} -m gunicorn {app} -k uvicorn.workers.UvicornWorker -w 2 -b {host}:{port}"
        f" --log-level warning --keep-alive {KEEP_ALIVE}",
        requires=("gunicorn", "uvicorn"),
        optional_args="--no-control-socket",
        workloads=MULTI_WORKER_WORKLOADS,
        packages=("gunicorn",),
    ),
    ServerSpec(
        "trio-asgi-wsgi",
        "{python} -m trio_asgi {wsgi_app} --interface wsgi --wsgi-threads {wsgi_threads}"
        " --host {host} --port {port} --no-access-log --log-level warning",
        requires=("trio_asgi.__main__",),
        optional_args=f"--timeout-keep-alive {KEEP_ALIVE}",
        workloads=WSGI_WORKLOADS,
    ),
    ServerSpec(
        "gunicorn-gthread",
        "{python} -m gunicorn {wsgi_app} -k gthread --threads {wsgi_threads} -w 1"
        f" -b {{host}}:{{port}} --keep-alive {KEEP_ALIVE} --log-level warning",
        requires=("gunicorn",),
        workloads=WSGI_WORKLOADS,
        packages=("gunicorn",),
    ),
    ServerSpec(
        "uvicorn-a2wsgi",
        "{python} -m uvicorn bench.wsgi_apps:asgi_app --host {host} --port {port}"
        f" --no-access-log --log-level warning --timeout-keep-alive {KEEP_ALIVE}"
        " --http h11 --loop asyncio --lifespan off",
        requires=("uvicorn", "a2wsgi"),
        workloads=WSGI_WORKLOADS,
        packages=("a2wsgi",),
    ),
    ServerSpec(
        "daphne",
        "{python} -m daphne -b {host} -p {port} -v 0 {app}",
        requires=("daphne",),
        packages=("daphne", "twisted"),
        no_h2="n/a: HTTP/2 over TLS only",
    ),
)


@dataclass
class RunningServer:
    spec: ServerSpec
    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path
    note: str = ""

    def pids(self) -> list[int]:
        return process_tree(self.process.pid)

    def died(self) -> str | None:
        """None while the server runs, else why it stopped."""
        code = self.process.poll()
        return None if code is None else f"server exited ({code}): {_last_line(self.log_path)}"

    def stop(self) -> None:
        """SIGTERM to the server's process group, then SIGKILL if it lingers.

        SIGTERM, not SIGINT: a harness started in the background has SIGINT ignored,
        and its children inherit that.
        """
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.process.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_TIMEOUT)
        # Helpers of the server (e.g. forked workers) may outlive the leader.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def _last_line(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def _answers(host: str, port: int) -> bool:
    """True when ``GET /`` gets a 200 response."""
    try:
        with socket.create_connection((host, port), timeout=2.0) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _launch(spec: ServerSpec, host: str, log_path: Path, *, optional: bool) -> RunningServer:
    port = free_port(host)
    paths = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            spec.command(host, port, optional=optional),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=env,
            start_new_session=True,  # its own process group, so stop() reaches its children
        )
    return RunningServer(spec, process, host, port, log_path)


def _wait_ready(server: RunningServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return
        probe = answers_h2 if server.spec.probe == "h2" else _answers
        if probe(server.host, server.port):
            return
        time.sleep(0.05)
    server.stop()
    raise StartFailure(f"failed: no answer within {START_TIMEOUT:.0f} s")


def _rejected_usage(server: RunningServer) -> bool:
    output = server.log_path.read_text(errors="replace").lower()
    return server.process.returncode == 2 and any(sign in output for sign in _USAGE_ERRORS)


def start(
    spec: ServerSpec, host: str, log_dir: Path, *, known_failure: str | None = None
) -> RunningServer:
    """Start a server and wait until it answers ``GET /``.

    Args:
        spec: the server.
        host: the address to bind.
        log_dir: where its output goes (one file per server, overwritten each round).
        known_failure: a reason it could not start in an earlier round: fail at once.

    Raises:
        StartFailure: not installed, command line rejected, exited, or no answer in time.
    """
    if known_failure is not None:
        raise StartFailure(known_failure)
    missing = [name for name in spec.requires if importlib.util.find_spec(name) is None]
    if missing:
        raise StartFailure(f"n/a: not installed ({', '.join(missing)})")
    if "{ref}" in spec.argv and not os.environ.get(REF_ENV):
        raise StartFailure(f"n/a: set {REF_ENV} to the checkout to compare against")
    log_path = log_dir / f"{spec.name}.log"
    server = _launch(spec, host, log_path, optional=True)
    _wait_ready(server)
    if server.process.returncode is not None and spec.optional_args and _rejected_usage(server):
        server = _launch(spec, host, log_path, optional=False)
        server.note = f"without {spec.optional_args} (rejected)"
        _wait_ready(server)
    if server.process.returncode is not None:
        if _rejected_usage(server):
            raise StartFailure(spec.rejected_note)
        raise StartFailure(f"failed: {server.died()}")
    return server
