"""Binding the sockets a supervisor (or the reloader) hands to its worker processes.

They are bound before any worker starts, so an address in use fails at once with
exit code 3, and a worker never binds anything: all of them accept on the same
inherited sockets (or, with ``--reuse-port``, each on its own SO_REUSEPORT socket
for the same address).
"""

from __future__ import annotations

import logging
import os
import socket

from .._config import Config, ConfigError, UnixBind
from .._server._listeners import open_listeners
from ._reuse_port import reserve_reuse_port_sockets

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


def unlink_unix_sockets(config: Config) -> None:
    for bind in config.binds:
        if isinstance(bind, UnixBind):
            try:
                os.unlink(bind.path)
            except OSError:
                pass
