"""A worker process: ``python -m trio_asgi._supervisor._worker CONTROL_FD``.

A fresh interpreter (never a fork of a running event loop). It reads its
:class:`~._spec.WorkerSpec` from the control socket, loads the app, and serves on
the inherited listening sockets::

    main task group
      signal watcher   SIGTERM or SIGINT: drain (Server.shutdown); a second SIGINT: cancel all
      control          heartbeats, the request limit; supervisor gone (EOF): drain
      serve()          lifespan startup, then ``ready`` to the supervisor

SIGHUP, SIGTTIN and SIGTTOU are the supervisor's: a worker ignores them (a
terminal's hangup reaches the whole process group). Exit codes: 0 after a clean
stop, 3 when the app cannot load or its lifespan startup fails, 130 when forced.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from typing import Any, NoReturn

import anyio
import anyio.abc

from .._app import adapt_app, load_app
from .._errors import AppLoadError, LifespanFailure, one_line
from .._logging import configure_logging
from .._loop_choice import choose_loop
from .._server._serve import Server
from .._types import ASGIApp
from ._reuse_port import listen_reuse_port
from ._spec import BEAT, READY, RECYCLE, WorkerSpec, receive_spec

logger = logging.getLogger("trio_asgi")

EXIT_OK = 0
EXIT_STARTUP_FAILED = 3
EXIT_FORCED = 130
#: How often the request limit is checked (heartbeats go out less often).
LIMIT_POLL = 0.1

_BACKENDS: dict[str, tuple[str, dict[str, Any]]] = {
    "trio": ("trio", {}),
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
}


class _TaggedFormatter(logging.Formatter):
    """Prefix each line with the worker's PID (a ``pid`` key for JSON lines)."""

    def __init__(self, inner: logging.Formatter, pid: int) -> None:
        super().__init__()
        self.inner = inner
        self.pid = pid

    def format(self, record: logging.LogRecord) -> str:
        line = self.inner.format(record)
        if line.startswith("{"):
            return f'{{"pid": {self.pid}, {line[1:]}'
        return f"[{self.pid}] {line}"


def tag_log_lines(pid: int) -> None:
    """Make every handler of our loggers (and the root's) say which process wrote a line."""
    for name in ("trio_asgi", "trio_asgi.access", ""):
        for handler in logging.getLogger(name).handlers:
            inner = handler.formatter or logging.Formatter()
            if not isinstance(inner, _TaggedFormatter):
                handler.setFormatter(_TaggedFormatter(inner, pid))


class WorkerRunner:
    """Serve one app in this process, reporting to the supervisor over ``control``."""

    def __init__(
        self, app: ASGIApp, spec: WorkerSpec, sockets: list[socket.socket], control: socket.socket
    ) -> None:
        self.spec = spec
        self.server = Server(app, spec.config)
        self.sockets = sockets
        self.control = control
        self.serving = False
        self.stopping = False
        self.forced = False

    def run(self) -> int:
        # The app is imported by now: --loop auto sees what it needs (one line, like run()).
        choice = choose_loop(self.spec.config.loop)
        logger.info("%s", choice.log_line())
        backend, options = _BACKENDS[choice.loop]
        try:
            anyio.run(self._main, backend=backend, backend_options=options)
        except BaseException as exc:
            leaf = _only_leaf(exc)
            if not isinstance(leaf, LifespanFailure):
                raise
            logger.error("Cannot start: %s", one_line(leaf))  # noqa: TRY400 - one line
            return EXIT_STARTUP_FAILED
        finally:
            self._send(BEAT + b" %d" % self.server.statistics().requests_served)
        return EXIT_FORCED if self.forced else EXIT_OK

    async def _main(self) -> None:
        async with anyio.create_task_group() as group:
            await group.start(self._watch_signals, group.cancel_scope)
            group.start_soon(self._report, group.cancel_scope)
            await group.start(self._serve, group.cancel_scope)
            self.serving = True
            self._send(READY)

    async def _serve(
        self, everything: anyio.CancelScope, *, task_status: anyio.abc.TaskStatus[Server]
    ) -> None:
        try:
            await self.server.serve(sockets=self.sockets, task_status=task_status)
        finally:
            everything.cancel()  # served and drained: nothing left to report

    async def _watch_signals(
        self, everything: anyio.CancelScope, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                if self.stopping and signum == signal.SIGINT:
                    logger.warning("Forced to stop: cancelling what is still running")
                    self.forced = True
                    everything.cancel()
                else:
                    self._stop(signal.Signals(signum).name, everything)

    def _stop(self, why: str, everything: anyio.CancelScope) -> None:
        if self.stopping:
            return
        self.stopping = True
        if not self.serving:
            logger.info("Stopping during startup (%s)", why)
            everything.cancel()
        else:
            logger.info("Draining (%s)", why)
            self.server.shutdown()

    async def _report(self, everything: anyio.CancelScope) -> None:
        """Heartbeats, ``ready``, the request limit, and the supervisor's disappearance."""
        spec = self.spec
        async with anyio.create_task_group() as group:
            group.start_soon(self._watch_supervisor, everything)
            recycling_asked = False
            next_beat = anyio.current_time()
            while True:
                served = self.server.statistics().requests_served
                if anyio.current_time() >= next_beat:
                    self._send(BEAT + b" %d" % served)
                    next_beat = anyio.current_time() + spec.heartbeat_interval
                limit = spec.max_requests
                if limit is not None and served >= limit and not recycling_asked:
                    recycling_asked = True
                    self._send(RECYCLE)
                await anyio.sleep(LIMIT_POLL if limit is not None else spec.heartbeat_interval)

    async def _watch_supervisor(self, everything: anyio.CancelScope) -> None:
        while True:
            await anyio.wait_readable(self.control)
            try:
                data = self.control.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                if self.spec.supervised:
                    logger.warning("The supervisor is gone")
                self._stop("supervisor gone", everything)
                return

    def _send(self, message: bytes) -> None:
        # A full buffer means the supervisor is not reading: this beat is dropped.
        with contextlib.suppress(OSError):
            self.control.send(message + b"\n")


def _only_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def main(argv: list[str]) -> NoReturn:
    control = socket.socket(fileno=int(argv[1]))
    control.set_inheritable(False)  # the app's own subprocesses must not hold it open
    spec = receive_spec(control)
    control.setblocking(False)
    log = spec.log
    configure_logging(log.level, log.config_file, log.use_colors, log_format=log.format)  # type: ignore[arg-type]
    tag_log_lines(os.getpid())
    for sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_IGN)
    sockets = [socket.socket(fileno=fd) for fd in spec.socket_fds]
    backlog = spec.config.backlog
    sockets += [listen_reuse_port(address, backlog) for address in spec.reuse_port_addresses]
    for sock in sockets:
        sock.set_inheritable(False)
    logger.info("Started worker process [%d]", os.getpid())
    try:
        loaded = load_app(spec.app.target, factory=spec.app.factory, app_dir=spec.app.app_dir)
        app = adapt_app(loaded, spec.config.interface)
    except AppLoadError as exc:
        logger.error("%s", exc)  # noqa: TRY400 - one line, the supervisor logs the exit
        sys.exit(EXIT_STARTUP_FAILED)
    sys.exit(WorkerRunner(app, spec, sockets, control).run())


if __name__ == "__main__":
    main(sys.argv)
