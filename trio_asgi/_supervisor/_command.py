"""``trio-asgi --workers N`` (and ``--limit-max-requests``): bind once, then supervise."""

from __future__ import annotations

import logging
import os

import trio

from .._config import Config
from ._binding import EXIT_STARTUP_FAILED, bind_for_workers, unlink_unix_sockets
from ._processes import Supervisor
from ._spec import AppTarget, LogSettings, WorkerSpec
from ._worker import tag_log_lines

logger = logging.getLogger("trio_asgi")


def run_workers(config: Config, app: AppTarget, log: LogSettings) -> int:
    """Supervise ``config.workers`` workers (one if not set) until stopped; the exit code."""
    tag_log_lines(os.getpid())
    workers = config.workers or 1
    bound = bind_for_workers(config)
    if bound is None:
        return EXIT_STARTUP_FAILED
    sockets, addresses = bound
    try:
        for address in addresses:
            url = address if address.startswith(("unix:", "fd:")) else f"http://{address}"
            logger.info("Listening on %s", url)
        logger.info("Started supervisor process [%d] for %d worker(s)", os.getpid(), workers)
        reserved_only = config.reuse_port  # the workers bind their own sockets
        spec = WorkerSpec(
            config=config,
            app=app,
            log=log,
            socket_fds=() if reserved_only else tuple(sock.fileno() for sock in sockets),
            reuse_port_addresses=addresses if reserved_only else (),
        )
        return trio.run(Supervisor(config, spec, workers, sockets).run)
    finally:
        for sock in sockets:
            sock.close()
        unlink_unix_sockets(config)


def run_supervised(config: Config, app: AppTarget, log: LogSettings) -> int:
    """The command's entry point for ``--workers``, ``--limit-max-requests`` and ``--reload``."""
    if config.reload:
        from .._reload import run_reloader

        return run_reloader(config, app, log)
    return run_workers(config, app, log)
