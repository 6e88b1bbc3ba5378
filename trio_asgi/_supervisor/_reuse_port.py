"""``--reuse-port``: every worker binds its own SO_REUSEPORT socket for each address.

The supervisor binds one socket per address with SO_REUSEPORT and never listens on
it: that reserves the address (an address in use still fails before any worker
starts, and port 0 is resolved once) without taking connections, which only
listening sockets receive. Each worker then binds and listens on its own socket,
and the kernel spreads new connections across them.

The price: a worker's accept queue is its own, so connections waiting in it when
the worker drains are reset. The default shared socket loses none.
"""

from __future__ import annotations

import socket

from .._config import Config, ConfigError, TCPBind, parse_bind
from .._server._listeners import describe


def _reuse_port_socket(bind: TCPBind) -> socket.socket:
    family = socket.AF_INET6 if ":" in bind.host else socket.AF_INET
    infos = socket.getaddrinfo(
        bind.host, bind.port, family=family, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(infos[0][4])
    except BaseException:
        sock.close()
        raise
    return sock


def reserve_reuse_port_sockets(config: Config) -> tuple[list[socket.socket], tuple[str, ...]]:
    """Bound, not listening, sockets for every bind; their addresses with ports resolved."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigError("reuse_port: this platform has no SO_REUSEPORT")
    tcp = [bind for bind in config.binds if isinstance(bind, TCPBind)]
    if len(tcp) != len(config.binds):
        raise ConfigError("reuse_port: only host:port binds can be shared (not unix: or fd://)")
    sockets: list[socket.socket] = []
    try:
        for bind in tcp:
            try:
                sockets.append(_reuse_port_socket(bind))
            except OSError as exc:
                raise OSError(exc.errno, f"{bind}: {exc.strerror}") from exc
        return sockets, tuple(describe(sock) for sock in sockets)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise


def listen_reuse_port(address: str, backlog: int) -> socket.socket:
    """A worker's own listening socket for an address the supervisor reserved."""
    bind = parse_bind(address)
    assert isinstance(bind, TCPBind)
    sock = _reuse_port_socket(bind)
    sock.listen(backlog)
    return sock
