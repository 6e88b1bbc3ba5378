"""The real server in memory: :func:`open_test_server` and the :class:`TestServer` it yields.

Theory of operation: :func:`open_test_server` runs :func:`trio_asgi.serve` (lifespan,
connection handling, the HTTP/1.1 and WebSocket code: everything that serves a socket)
on an in-memory listener. Each :meth:`TestServer.connect` hands the server one end of
a :func:`~trio_asgi.testing.bounded_memory_stream_pair` and the test the other, wrapped
in a :class:`~trio_asgi.testing.TestConnection`. Nothing here uses a socket, a thread or
the wall clock on its own: under a virtual clock (:func:`~trio_asgi.testing.run_in_virtual_time`,
pytest-trio's ``autojump_clock``, or :class:`~trio_asgi.testing.VirtualClockEventLoop` on
asyncio) every server timeout fires at once, and a run is a pure function of its inputs,
so a failing hypothesis example replays exactly.

On leaving the block, in order: every client still connected leaves; each request must
then finish within ``disconnect_timeout`` (an app that never notices the client leaving
fails the test with :class:`~trio_asgi.testing.HungRequest`); the server shuts down
gracefully, and must not have to cancel anything; no exception may have escaped a
connection handler; and the first error of the app itself is raised.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from typing import Any

import anyio
import anyio.abc

from .._config import Config
from .._server._serve import Server, serve
from .._server._state import ServerStatistics
from .._types import ASGIApp
from ._app_failures import AppFailures, HungRequest, capture_app_failures, collapse
from ._connection import TestConnection
from ._h2_client import TestH2Connection, open_http2
from ._memory import MemoryListener
from ._server_errors import ServerErrors, capture_server_errors
from ._virtual_clock import wait_all_tasks_blocked

#: Virtual seconds a read waits before :class:`trio.TooSlowError`: longer than every
#: default server timeout, so a hang is reported instead of blocking the test.
DEFAULT_TIMEOUT = 120.0

#: Virtual seconds an app may take to finish once its client has left (the default
#: graceful-shutdown timeout: an app slower than that would hold a shutdown up).
DEFAULT_DISCONNECT_TIMEOUT = 10.0

#: How often :meth:`TestServer.wait_requests_finished` looks (virtual seconds).
_POLL = 0.1


class TestServer:
    """The handle :func:`open_test_server` yields: connect to the server, watch it, stop it.

    Attributes:
        server: The :class:`trio_asgi.Server` being run.
        app: The app as given.
        errors: What the server logged at ERROR level while running.
        connections: Every connection made, in order.
    """

    __test__ = False

    def __init__(
        self,
        server: Server,
        app: ASGIApp,
        listener: MemoryListener,
        timeout: float | None,
        errors: ServerErrors,
        failures: AppFailures | None = None,
    ) -> None:
        self.server: Server = server
        self.errors: ServerErrors = errors
        self.app: ASGIApp = app
        self._listener = listener
        self._timeout = timeout
        self._failures = failures
        self.connections: list[TestConnection] = []

    @property
    def config(self) -> Config:
        """The server's configuration."""
        return self.server.config

    async def connect(
        self,
        receive_window: int | None = None,
        *,
        client_address: tuple[str, int] | None = None,
    ) -> TestConnection:
        """Open a new connection to the server.

        Args:
            receive_window: At most this many unread bytes in each direction; the
                writer waits beyond it. A small window is a slow client: the
                server's ``send()`` blocks until the test reads. ``None``: unbounded.
            client_address: The ``client`` the scope reports (default: 127.0.0.1
                and a fresh port).
        """
        stream = await self._listener.open_stream(
            receive_window=receive_window, client_address=client_address
        )
        connection = TestConnection(stream, timeout=self._timeout, check_app=self.raise_app_error)
        self.connections.append(connection)
        return connection

    async def connect_http2(
        self,
        receive_window: int | None = None,
        *,
        initial_window_size: int | None = None,
        auto_window_update: bool = True,
        client_address: tuple[str, int] | None = None,
    ) -> TestH2Connection:
        """Open a new connection and speak HTTP/2 on it by prior knowledge.

        Args:
            receive_window: As for :meth:`connect`: the in-memory stream's bound on
                unread bytes (a client whose socket buffer is full).
            initial_window_size: Our HTTP/2 SETTINGS_INITIAL_WINDOW_SIZE (per stream).
            auto_window_update: Give window back as response DATA arrives; False: a
                client that does not read, until :meth:`TestH2Connection.open_window`.
            client_address: The ``client`` the scope reports.

        Raises:
            ConnectionClosed: The server closed the connection before its SETTINGS.
        """
        connection = await self.connect(receive_window, client_address=client_address)
        return await open_http2(
            connection,
            initial_window_size=initial_window_size,
            auto_window_update=auto_window_update,
        )

    def raise_app_error(self) -> None:
        """Raise the app's first error not raised yet, if there is one.

        The clients call it after every read, so a test fails with the app's own
        exception rather than with the 500 or close code that followed it. It does
        nothing when the server was opened with ``raise_app_exceptions=False``.
        """
        if self._failures is not None:
            self._failures.raise_first()

    def statistics(self) -> ServerStatistics:
        """Open connections, requests in flight and requests served, right now."""
        return self.server.statistics()

    async def drop_clients(self) -> None:
        """Close every client connection without a word, as clients that leave do."""
        for connection in self.connections:
            await connection.close()

    async def wait_requests_finished(self, within: float = DEFAULT_DISCONNECT_TIMEOUT) -> None:
        """Wait until no request or WebSocket session is running any more.

        Args:
            within: Seconds (virtual, under a virtual clock) to wait at most.

        Raises:
            HungRequest: Some were still running after ``within`` seconds.
        """
        with anyio.move_on_after(within):
            while True:
                await wait_all_tasks_blocked()
                if not self.statistics().requests_in_flight:
                    return
                await anyio.sleep(_POLL)
        running = self.statistics().requests_in_flight
        raise HungRequest(
            f"{running} request(s) or WebSocket session(s) still running {within}s after "
            "their client left: the app never noticed (it should see http.disconnect or "
            "websocket.disconnect from receive(), or an OSError from send())"
        )

    def shutdown(self) -> None:
        """Start a graceful shutdown (what leaving the ``async with`` block does too)."""
        self.server.shutdown()


@asynccontextmanager
async def open_test_server(
    app: ASGIApp,
    config: Config | None = None,
    *,
    read_timeout: float | None = DEFAULT_TIMEOUT,
    check_server_errors: bool = True,
    raise_app_exceptions: bool = True,
    disconnect_timeout: float | None = DEFAULT_DISCONNECT_TIMEOUT,
    **config_options: Any,
) -> AsyncIterator[TestServer]:
    """Run ``app`` on the real server stack, in memory, for the duration of the block.

    Lifespan startup has completed when the block starts. It runs on trio and on
    asyncio (see :func:`~trio_asgi.testing.with_test_server` for an example).

    Args:
        app: The ASGI app (ASGI 3, or ASGI 2 with ``interface="auto"``).
        config: The server configuration (default: ``Config()`` with the access log off).
        read_timeout: Seconds a client read waits before :class:`trio.TooSlowError`
            (``None``: forever).
        check_server_errors: On leaving the block, raise :class:`AssertionError` if
            an exception escaped a connection handler (a server bug).
        raise_app_exceptions: The app's errors are the test's failure: what the app
            raised (or :class:`~trio_asgi.testing.IncompleteResponse`, or
            :class:`~trio_asgi.testing.HungRequest`) comes out of the client's next
            read, or of the block, and is not logged. False: logged, as in
            production; the test sees what a client sees (a 500, a close code).
        disconnect_timeout: On leaving the block, every client still connected leaves,
            and each request must finish within this many seconds, else
            :class:`~trio_asgi.testing.HungRequest`. ``None`` (and with
            ``raise_app_exceptions=False``): clients stay until the server shuts down.
        **config_options: Options that replace those of ``config``, e.g.
            ``max_body_size=1024``.

    Yields:
        The :class:`TestServer`.

    Raises:
        trio_asgi.LifespanFailure: Lifespan startup failed.
        AssertionError: An exception escaped a connection handler (a server bug).
    """
    base = config if config is not None else Config(access_log=False)
    if config_options:
        base = base.replace(**config_options)
    listener = MemoryListener()
    outcome: BaseException | None = None
    with capture_server_errors() as errors, _app_failures(errors, raise_app_exceptions) as failures:
        try:
            async with anyio.create_task_group() as group:
                server: Server = await group.start(partial(_serve, app, base, listener))
                handle = TestServer(server, app, listener, read_timeout, errors, failures)
                yield handle
                if disconnect_timeout is not None and raise_app_exceptions:
                    await handle.drop_clients()
                    await handle.wait_requests_finished(disconnect_timeout)
                server.shutdown()
        except BaseException as exc:  # re-raised below, without its group
            outcome = collapse(exc)
    _raise_outcome(outcome, errors if check_server_errors else None, failures)


@contextmanager
def _app_failures(errors: ServerErrors, enabled: bool) -> Iterator[AppFailures | None]:
    if not enabled:
        yield None
        return
    with capture_app_failures(errors) as failures:
        yield failures


def _raise_outcome(
    outcome: BaseException | None, errors: ServerErrors | None, failures: AppFailures | None
) -> None:
    """Raise what the block ends with: a cancellation, a server bug, the app's error, the test's.

    Raised outside any ``except`` clause, so no exception group shows as its context.
    """
    if outcome is not None and isinstance(outcome, anyio.get_cancelled_exc_class()):
        raise outcome
    if outcome is None and errors is not None:
        errors.check()
    failure = failures.pop() if failures is not None else None
    if failure is not None:
        if outcome is not None and outcome is not failure:
            failure.add_note(f"(the test then failed with {type(outcome).__name__}: {outcome})")
        raise failure
    if outcome is not None:
        raise outcome


async def _serve(
    app: ASGIApp,
    config: Config,
    listener: MemoryListener,
    *,
    task_status: anyio.abc.TaskStatus[Server] = anyio.TASK_STATUS_IGNORED,
) -> None:
    await serve(app, config, listeners=[listener], task_status=task_status)
