"""``trio-asgi --workers N`` (and ``--limit-max-requests``): bind once, then supervise.

The supervisor binds every socket before any worker starts, so an address in use
fails at once with exit code 3, and a worker never binds anything: all of them
accept on the same inherited sockets (or, with ``--reuse-port``, each on its own
SO_REUSEPORT socket for the same address).
"""

from __future__ import annotations

import logging
import os
import socket

import trio

from .._config import Config, ConfigError, UnixBind
from .._server._listeners import open_listeners
from ._processes import Supervisor
from ._reuse_port import reserve_reuse_port_sockets
from ._spec import AppTarget, LogSettings, WorkerSpec
from ._worker import tag_log_lines

logger = logging.getLogger("trio_asgi")

#: Exit code when an address cannot be bound or the app cannot start.
EXIT_STARTUP_FAILED = 3


def bind_for_workers(config: Config) -> tuple[list[socket.socket], tuple[str, ...]] | None:
    """The listening sockets the workers inherit; None (logged) when one cannot be bound."""
    try:
        if config.reuse_port:
            return reserve_reuse_port_sockets(config)
        return open_listeners(config, None)
    except ConfigError as exc:
        logger.error("%s", exc)  # noqa: TRY400 - one line, no traceback
        return None
    except OSError as exc:
        where = f" on {exc.strerror}" if exc.strerror else f": {exc}"
        logger.error("Cannot listen%s", where)  # noqa: TRY400 - one line, no traceback
        return None


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
        _unlink_unix_sockets(config)


def _unlink_unix_sockets(config: Config) -> None:
    for bind in config.binds:
        if isinstance(bind, UnixBind):
            try:
                os.unlink(bind.path)
            except OSError:
                pass
