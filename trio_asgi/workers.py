"""Gunicorn worker classes: ``gunicorn -k trio_asgi.workers.TrioWorker app:app``.

Gunicorn stays the process manager (its arbiter binds, forks, restarts and
scales workers); each worker serves the app with trio-asgi on Gunicorn's sockets.
:class:`AsyncioWorker` runs the same server on asyncio, for apps built on asyncio
libraries. Needs the ``gunicorn`` extra (``pip install 'trio-asgi[gunicorn]'``).

What maps from Gunicorn's settings:

* ``--graceful-timeout`` -> ``timeout_graceful_shutdown``; ``--keep-alive`` ->
  ``timeout_keep_alive``; ``--worker-connections`` -> ``limit_concurrency``;
* ``--max-requests`` (with ``--max-requests-jitter``): the worker drains and exits
  after that many requests, and the arbiter starts a fresh one;
* ``--timeout``: the worker tells the arbiter it is alive (``notify()``) from its
  event loop, so a blocked loop gets the worker killed and replaced;
* ``--access-logfile``/``--error-logfile`` and ``--log-level``: our access and error
  lines go to Gunicorn's handlers (our own access-line format, not ``--access-logformat``).

Signals, as Gunicorn defines them for a worker: SIGTERM (and SIGHUP) stop
gracefully; SIGQUIT and SIGINT stop at once (lifespan shutdown still runs, bounded);
SIGUSR1 reopens the log files. Anything else: set :attr:`TrioWorker.CONFIG_KWARGS`
in a subclass.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from typing import Any, ClassVar

import anyio
import anyio.abc
from gunicorn.workers.base import Worker  # type: ignore[import-untyped]

from ._app import adapt_app
from ._config import Config, Loop
from ._errors import LifespanFailure, one_line
from ._server._serve import Server

logger: logging.Logger = logging.getLogger("trio_asgi")

#: Gunicorn's exit code for a worker that cannot boot (its arbiter then stops).
WORKER_BOOT_ERROR = 3
#: How often the worker checks its request limit and its parent.
CHECK_INTERVAL = 0.5

_GRACEFUL = (signal.SIGTERM, signal.SIGHUP)
_QUICK = (signal.SIGQUIT, signal.SIGINT)


class TrioWorker(Worker):  # type: ignore[misc]
    """A Gunicorn worker that serves an ASGI app with trio-asgi on trio."""

    #: The event loop (a :class:`~trio_asgi.Config` ``loop`` value).
    LOOP: ClassVar[Loop] = "trio"
    #: Extra :class:`~trio_asgi.Config` options for every worker of this class.
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {}
    #: Gunicorn's flag: False once the worker should stop (set by its signal handlers).
    alive: bool

    def init_signals(self) -> None:
        # The event loop installs its own handlers for what it waits on; Gunicorn's
        # wakeup fd would collide with trio's (and asyncio's).
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, self.handle_usr1)
        signal.siginterrupt(signal.SIGUSR1, False)
        signal.set_wakeup_fd(-1)

    def server_config(self) -> Config:
        """The trio-asgi Config from Gunicorn's settings (see the module docstring)."""
        cfg = self.cfg
        options: dict[str, Any] = {
            "loop": self.LOOP,
            "timeout_graceful_shutdown": cfg.graceful_timeout or None,
            "timeout_keep_alive": cfg.keepalive or None,
            "limit_concurrency": cfg.worker_connections or None,
            "access_log": bool(getattr(self.log, "access_log_enabled", cfg.accesslog)),
        }
        return Config.from_mapping({**options, **self.CONFIG_KWARGS})

    def _use_gunicorn_logging(self) -> None:
        for ours, theirs in (
            (logging.getLogger("trio_asgi"), self.log.error_log),
            (logging.getLogger("trio_asgi.access"), self.log.access_log),
        ):
            ours.handlers = list(theirs.handlers)
            ours.setLevel(theirs.level if theirs.level else logging.INFO)
            ours.propagate = False

    def run(self) -> None:
        self._use_gunicorn_logging()
        config = self.server_config()
        app = adapt_app(self.wsgi, config.interface)
        sockets: list[socket.socket] = [getattr(s, "sock", s) for s in self.sockets]
        backend = "trio" if self.LOOP == "trio" else "asyncio"
        options = {"use_uvloop": True} if self.LOOP == "uvloop" else {}
        try:
            anyio.run(self._serve, Server(app, config), sockets, backend=backend, **_opts(options))
        except BaseException as exc:
            leaf = _only_leaf(exc)
            if isinstance(leaf, LifespanFailure):
                # Gunicorn's "worker failed to boot": the arbiter stops instead of looping.
                logger.error("Cannot start: %s", one_line(leaf))  # noqa: TRY400 - one line
                sys.exit(WORKER_BOOT_ERROR)
            logger.exception("Worker failed")
            sys.exit(1)
        sys.exit(0)

    async def _serve(self, server: Server, sockets: list[socket.socket]) -> None:
        async with anyio.create_task_group() as group:
            await group.start(self._watch_signals, server, group.cancel_scope)
            await group.start(_serve_until_done, server, sockets, group.cancel_scope)
            group.start_soon(self._keep_alive, server)

    async def _watch_signals(
        self,
        server: Server,
        everything: anyio.CancelScope,
        *,
        task_status: anyio.abc.TaskStatus[None],
    ) -> None:
        with anyio.open_signal_receiver(*_GRACEFUL, *_QUICK) as signals:
            task_status.started()
            async for signum in signals:
                if signum in _QUICK:
                    self.alive = False
                    everything.cancel()
                    return
                self.alive = False
                server.shutdown()

    async def _keep_alive(self, server: Server) -> None:
        """Gunicorn's heartbeat from the loop; the request limit; an orphaned worker."""
        interval = min(CHECK_INTERVAL, max(self.timeout / 4, 0.05)) if self.timeout else 0.5
        while True:
            self.notify()
            if self.alive and server.statistics().requests_served >= self.max_requests:
                logger.info("Max requests reached (%d): restarting the worker", self.max_requests)
                self.alive = False
                server.shutdown()
            if self.alive and os.getppid() != self.ppid:
                logger.info("Parent changed: shutting down %s", self)
                self.alive = False
                server.shutdown()
            await anyio.sleep(interval)


async def _serve_until_done(
    server: Server,
    sockets: list[socket.socket],
    everything: anyio.CancelScope,
    *,
    task_status: anyio.abc.TaskStatus[Server],
) -> None:
    try:
        await server.serve(sockets=sockets, task_status=task_status)
    finally:
        everything.cancel()  # served and drained: stop the heartbeat and the watcher


def _only_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _opts(options: dict[str, Any]) -> dict[str, Any]:
    return {"backend_options": options} if options else {}


class AsyncioWorker(TrioWorker):
    """The same worker on asyncio, for apps built on asyncio libraries."""

    LOOP: ClassVar[Loop] = "asyncio"
