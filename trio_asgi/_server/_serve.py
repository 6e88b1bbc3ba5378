"""``serve()``: the server's task tree, from lifespan startup to the last closed connection.

The tree, outermost first (each level owns the next)::

    root task group             the app's lifespan call runs here
      connections task group    one task per connection (its deadline is the grace period)
        accept task group       one accept loop per listening socket

Graceful shutdown (:meth:`Server.shutdown`): cancel the accept loops and close the
listening sockets; ask every connection to finish (idle ones close at once, busy
ones after their response with ``Connection: close``); give them
``timeout_graceful_shutdown`` seconds, then cancel what is left; then run lifespan
shutdown. Cancelling ``serve()`` from outside skips the grace period but still
runs lifespan shutdown, shielded and bounded by ``timeout_lifespan_shutdown``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.abc
import trio

from .._app import adapt_app
from .._config import Config, UnixBind
from .._errors import LifespanFailure
from .._loop_choice import start_wrong_loop_reports
from .._metrics_text import render as render_metrics
from .._types import ASGIApp
from ._accept import Accepted, Acceptor, SocketAcceptor, StreamAcceptor, open_accepted
from ._connection import HTTPConnection
from ._fast_paths import ConnectionGroup, open_connection_group
from ._in_flight import sweep_in_flight
from ._lifespan import Lifespan
from ._listeners import CAPACITY_ERRNOS, CapacityLog, describe_address, open_listeners
from ._metrics_server import listener_address, open_metrics_listener, serve_metrics
from ._state import ServerState, ServerStatistics
from ._tls import TLSTerminator
from ._transport import Transport
from ._trio_streams import TrioListener

#: Listeners :func:`serve` accepts besides plain sockets.
ListenerLike = anyio.abc.SocketListener | trio.abc.Listener[Any]

logger = logging.getLogger("trio_asgi")

#: How long the accept loop backs off when the process is out of file descriptors.
ACCEPT_RETRY_DELAY = 0.1


class Server:
    """A server for one app and config; also the handle :func:`serve` gives ``task_status``.

    Example:
        >>> async def main(app):  # doctest: +SKIP
        ...     async with trio.open_nursery() as nursery:
        ...         config = Config(bind=("127.0.0.1:0",))
        ...         server = await nursery.start(trio_asgi.serve, app, config)
        ...         print(server.addresses)       # ('127.0.0.1:54321',)
        ...         server.shutdown()             # graceful; serve() returns when done
    """

    def __init__(self, app: ASGIApp, config: Config | None = None) -> None:
        self.config: Config = config or Config()
        adapted = adapt_app(app, self.config.interface, wsgi_threads=self.config.wsgi_threads)
        self._state = ServerState(adapted, self.config)
        #: The bound addresses in bind syntax (port 0 resolved); set once serving.
        self.addresses: tuple[str, ...] = ()
        #: Where ``/metrics`` is served (``Config.metrics_bind``, port 0 resolved), once serving.
        self.metrics_address: str | None = None
        self._shutdown_requested = False
        self._shutdown_event: anyio.Event | None = None
        self._running = False
        # TLS for the sockets we accept ourselves (binds and given sockets).
        self._tls = TLSTerminator.for_config(self.config)

    def shutdown(self) -> None:
        """Start a graceful shutdown; :meth:`serve` returns once it is done. Idempotent."""
        self._shutdown_requested = True
        if self._shutdown_event is not None:
            self._shutdown_event.set()

    def reload_tls(self) -> bool:
        """Load the TLS certificate files again: new connections get the new certificate.

        Open connections keep theirs. Returns False (and logs why) when the server has
        no TLS or the files cannot be loaded, in which case the old certificate stays.
        """
        if self._tls is None:
            logger.info("No TLS certificate to reload (ssl_certfile is not set)")
            return False
        return self._tls.reload()

    def statistics(self) -> ServerStatistics:
        """Open connections, requests in flight and requests served, right now, and the
        figures the Prometheus metrics show (see the metrics reference)."""
        return self._state.statistics()

    def metrics_text(self) -> str:
        """:meth:`statistics` in the Prometheus text format, as ``/metrics`` serves it."""
        return render_metrics([self.statistics()])

    async def serve(
        self,
        *,
        sockets: Sequence[socket.socket] | None = None,
        listeners: Sequence[ListenerLike] | None = None,
        task_status: anyio.abc.TaskStatus[Server] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run until :meth:`shutdown` or cancellation; ``task_status.started(self)`` once serving.

        Args:
            sockets: listening sockets to serve on instead of the configured binds.
            listeners: anyio socket listeners or trio listeners (an SSL listener, an
                in-memory one) to serve on instead of the configured binds.
            task_status: for ``nursery.start``; gets this server once the sockets are bound
                and lifespan startup is done.

        Raises:
            LifespanFailure: lifespan startup failed (nothing was bound).
            OSError: a configured address could not be bound (lifespan shutdown has run).
        """
        if self._running:
            raise RuntimeError("this Server is already serving")
        self._running = True
        start_wrong_loop_reports()  # the tasks below inherit it: one hint per server
        self._shutdown_event = anyio.Event()
        if self._shutdown_requested:
            self._shutdown_event.set()
        logger.info("Started server process [%d]", os.getpid())
        state = self._state
        lifespan = Lifespan(state.app, self.config, state.lifespan_state)
        # Bound before anything starts: a metrics port in use fails like any other bind.
        bind = self.config.metrics_bind
        metrics_listener = await open_metrics_listener(bind) if bind is not None else None
        async with anyio.create_task_group() as root:
            if metrics_listener is not None:
                self.metrics_address = listener_address(metrics_listener)
                root.start_soon(serve_metrics, metrics_listener, self.statistics)
            if lifespan.supported:
                state.metrics.lifespan = "starting"
                root.start_soon(lifespan.run_app)
            root.start_soon(sweep_in_flight, state)
            try:
                failure = await self._serve_in_lifespan(lifespan, sockets, listeners, task_status)
            finally:
                lifespan.cancel()
                root.cancel_scope.cancel()
        if failure is not None:
            raise failure
        logger.info("Finished server process [%d]", os.getpid())

    async def _serve_in_lifespan(
        self,
        lifespan: Lifespan,
        sockets: Sequence[socket.socket] | None,
        listeners: Sequence[ListenerLike] | None,
        task_status: anyio.abc.TaskStatus[Server],
    ) -> LifespanFailure | OSError | None:
        """Lifespan startup, the connections, lifespan shutdown; what failed, if anything."""
        metrics = self._state.metrics
        try:
            await lifespan.startup()
        except LifespanFailure as exc:
            metrics.lifespan = "failed"
            return exc
        if metrics.lifespan == "starting":
            metrics.lifespan = "started" if lifespan.supported else "unsupported"
        try:
            await self._serve_connections(sockets, listeners, task_status)
        except OSError as exc:
            # Binding failed (connection errors never get this far): raise it plain, not
            # wrapped in the task group's exception group.
            return exc
        finally:
            if metrics.lifespan == "started":
                metrics.lifespan = "stopping"
            with anyio.CancelScope(shield=True):  # bounded by timeout_lifespan_shutdown
                await lifespan.shutdown()
            if metrics.lifespan == "stopping":
                metrics.lifespan = "stopped"
        return None

    async def _serve_connections(
        self,
        sockets: Sequence[socket.socket] | None,
        given: Sequence[ListenerLike] | None,
        task_status: anyio.abc.TaskStatus[Server],
    ) -> None:
        config = self.config
        state = self._state
        assert self._shutdown_event is not None
        listeners: list[Acceptor]
        if given is not None:
            listeners, self.addresses = _adopt_listeners(given)
        else:
            bound, self.addresses = open_listeners(config, sockets)
            listeners = [SocketAcceptor(sock) for sock in bound]
        try:
            for address in self.addresses:
                logger.info("Listening on %s", _url(address, tls=self._tls is not None))
            async with open_connection_group() as connections:
                async with anyio.create_task_group() as acceptors:
                    for listener in listeners:
                        acceptors.start_soon(self._accept_loop, listener, connections)
                    task_status.started(self)
                    await self._shutdown_event.wait()
                    acceptors.cancel_scope.cancel()
                await _close_all(listeners)
                logger.info(
                    "Shutting down: waiting for %d connection(s) to finish", state.open_connections
                )
                state.begin_shutdown()
                if config.timeout_graceful_shutdown is not None:
                    connections.cancel_scope.deadline = (
                        anyio.current_time() + config.timeout_graceful_shutdown
                    )
            if connections.cancel_scope.cancelled_caught:
                state.metrics.count_timeout("graceful_shutdown")
                logger.warning(
                    "Graceful shutdown timed out after %ss; cancelled the rest",
                    config.timeout_graceful_shutdown,
                )
        finally:
            with anyio.CancelScope(shield=True):
                await _close_all(listeners)
            if sockets is None and given is None:
                _unlink_unix_sockets(config)

    async def _accept_loop(self, listener: Acceptor, connections: ConnectionGroup) -> None:
        capacity_log = CapacityLog(anyio.current_time)
        while True:
            try:
                batch = await listener.accept_batch()
            except anyio.BrokenResourceError as exc:
                cause = exc.__cause__
                if not (isinstance(cause, OSError) and cause.errno in CAPACITY_ERRNOS):
                    raise
                capacity_log.failed(cause, ACCEPT_RETRY_DELAY)
                await anyio.sleep(ACCEPT_RETRY_DELAY)
                continue
            capacity_log.succeeded()
            for accepted in batch:
                connections.start(self._handle_connection, accepted)

    async def _handle_connection(self, accepted: Accepted) -> None:
        state = self._state
        state.open_connections += 1
        state.metrics.connection_opened()
        stream: anyio.abc.ByteStream | None = None
        conn: HTTPConnection | None = None
        transport: Transport | None = None
        try:
            stream = await open_accepted(accepted)
            if stream is not None and self._tls is not None and isinstance(accepted, socket.socket):
                stream = await self._tls.handshake(stream)
            if stream is None:
                return
            tls = getattr(stream, "is_tls", False)
            conn = HTTPConnection(stream, state, scheme="https" if tls else "http")
            # The transport owns the connection from here. Not keeping the stream alive
            # in this frame frees what only wrapped the socket on trio's fast path
            # (anyio's and trio's socket objects: ~0.6 KiB an idle connection).
            transport, stream = conn.transport, None
            await conn.run()
        except Exception:
            conn = None  # counted as an error
            # The catch-all boundary: nothing a client or an app does takes the server down.
            logger.exception("Unexpected error while serving a connection")
            if transport is not None:
                await transport.close()  # never waits, closes the stream under it
            elif stream is not None:
                await anyio.aclose_forcefully(stream)
        finally:
            state.open_connections -= 1
            state.metrics.connection_closed(conn, shutting_down=state.shutting_down)


async def serve(
    app: ASGIApp,
    config: Config | None = None,
    *,
    sockets: Sequence[socket.socket] | None = None,
    listeners: Sequence[ListenerLike] | None = None,
    task_status: anyio.abc.TaskStatus[Server] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until shut down or cancelled. The library entry point.

    Use it with ``nursery.start`` to get the :class:`Server` handle once the sockets
    are bound and lifespan startup is done::

        server = await nursery.start(trio_asgi.serve, app, Config(bind=("127.0.0.1:0",)))
        ...
        server.shutdown()

    No signal handlers are installed: that is :func:`trio_asgi.run`'s job.

    Raises:
        LifespanFailure: lifespan startup failed.
        OSError: a configured address could not be bound.
    """
    await Server(app, config).serve(sockets=sockets, listeners=listeners, task_status=task_status)


def _adopt_listeners(given: Sequence[ListenerLike]) -> tuple[list[Acceptor], tuple[str, ...]]:
    adopted: list[Acceptor] = []
    addresses: list[str] = []
    for listener in given:
        if isinstance(listener, trio.abc.Listener):
            wrapped = TrioListener(listener)
            adopted.append(wrapped)
            addresses.append(wrapped.describe())
        else:
            adopted.append(StreamAcceptor(listener))
            local = listener.extra(anyio.abc.SocketAttribute.local_address)
            addresses.append(describe_address(local))
    return adopted, tuple(addresses)


async def _close_all(listeners: Sequence[Acceptor]) -> None:
    for listener in listeners:
        # Closing must not wait: close each one forcefully. One cancelled scope per
        # listener, since aclose() closes and then checkpoints: with one scope for all,
        # the first Cancelled would end the loop and leave the other sockets open.
        with anyio.CancelScope() as scope:
            scope.cancel()
            with contextlib.suppress(Exception):
                await listener.aclose()


def _unlink_unix_sockets(config: Config) -> None:
    for bind in config.binds:
        if isinstance(bind, UnixBind):
            with contextlib.suppress(OSError):
                os.unlink(bind.path)


def _url(address: str, *, tls: bool) -> str:
    scheme = "https" if tls else "http"
    return address if address.startswith(("unix:", "fd:")) else f"{scheme}://{address}"
