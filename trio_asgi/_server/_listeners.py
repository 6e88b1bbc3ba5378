"""Binding listening sockets from :class:`~trio_asgi.Config` binds, or adopting given ones."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import stat
from collections.abc import Callable, Sequence
from typing import Any

from .._config import Bind, Config, FdBind, TCPBind, UnixBind

logger = logging.getLogger("trio_asgi")

#: accept() failures that mean "out of resources for now", not "the listener is broken".
CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
#: While accept() keeps failing, at most one summary line per this many seconds.
CAPACITY_LOG_INTERVAL = 60.0


class CapacityLog:
    """The log of an accept loop that ran out of resources (EMFILE and the like).

    The loop retries every few hundred milliseconds while it lasts, which can be hours:
    the first failure is logged, then a summary at most once per ``interval`` seconds
    (how many failures since the last line), and one line when accepting works again.
    Times are read from ``clock`` (the server gives ``anyio.current_time``), and only
    while failing.
    """

    __slots__ = ("_clock", "_failures", "_interval", "_logged_at", "_since", "_unlogged")

    def __init__(self, clock: Callable[[], float], interval: float = CAPACITY_LOG_INTERVAL) -> None:
        self._clock = clock
        self._interval = interval
        self._failures = 0  # in the current run of failures
        self._unlogged = 0  # of them, not yet counted in a line
        self._since = self._logged_at = 0.0

    def failed(self, cause: OSError, retry_delay: float) -> None:
        """One accept() that failed for want of resources; it is retried in ``retry_delay``."""
        now = self._clock()
        self._failures += 1
        self._unlogged += 1
        if self._failures == 1:
            self._since = self._logged_at = now
            self._unlogged = 0
            logger.error("accept() failed (%s); retrying in %ss", cause, retry_delay)
        elif now - self._logged_at >= self._interval:
            logger.error(
                "accept() still failing (%s): %d more failure(s) in the last %.0fs, "
                "%d in all over %.0fs; retrying every %ss",
                cause,
                self._unlogged,
                now - self._logged_at,
                self._failures,
                now - self._since,
                retry_delay,
            )
            self._logged_at = now
            self._unlogged = 0

    def succeeded(self) -> None:
        """accept() worked: ends a run of failures (logged if there was one)."""
        if self._failures:
            now = self._clock()
            logger.warning(
                "accept() works again after %d failure(s) over %.0fs",
                self._failures,
                now - self._since,
            )
            self._failures = self._unlogged = 0


def bind_socket(bind: Bind, backlog: int) -> socket.socket:
    """A listening socket for one bind (blocking calls, done before serving starts)."""
    if isinstance(bind, FdBind):
        sock = socket.socket(fileno=bind.fd)
        sock.listen(backlog)
        return sock
    if isinstance(bind, UnixBind):
        _remove_stale_unix_socket(bind.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(bind.path)
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        return sock
    return _bind_tcp(bind, backlog)


def _bind_tcp(bind: TCPBind, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in bind.host else socket.AF_INET
    infos = socket.getaddrinfo(
        bind.host,
        bind.port,
        type=socket.SOCK_STREAM,
        flags=socket.AI_PASSIVE,
        family=socket.AF_UNSPEC,
    )
    family, _, _, _, address = next((i for i in infos if i[0] == family), infos[0])
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # "[::]:8000" means IPv6 only; bind 0.0.0.0 as well to serve both.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def _remove_stale_unix_socket(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)


def describe(sock: socket.socket) -> str:
    """The bound address in bind syntax, with port 0 resolved."""
    return describe_address(sock.getsockname())


def describe_address(address: Any) -> str:
    """A socket address (``(host, port, ...)`` or a unix path) in bind syntax."""
    if isinstance(address, tuple):
        return str(TCPBind(str(address[0]), int(address[1])))
    return str(UnixBind(address.decode() if isinstance(address, bytes) else str(address)))


def open_listeners(
    config: Config, sockets: Sequence[socket.socket] | None
) -> tuple[list[socket.socket], tuple[str, ...]]:
    """Bind the configured addresses (or adopt ``sockets``): the listening sockets, addresses."""
    raw: list[socket.socket] = []
    try:
        if sockets is not None:
            for sock in sockets:
                sock.listen(config.backlog)  # harmless on a socket that already listens
                raw.append(sock)
        else:
            for bind in config.binds:
                try:
                    raw.append(bind_socket(bind, config.backlog))
                except OSError as exc:
                    # Name the address: "Address already in use" alone does not say which.
                    raise OSError(exc.errno, f"{bind}: {exc.strerror}") from exc
        addresses = tuple(describe(sock) for sock in raw)
    except BaseException:
        for sock in raw:
            sock.close()
        raise
    return raw, addresses
