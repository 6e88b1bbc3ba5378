"""``run()``: serve an app in the foreground, stopping cleanly on SIGINT and SIGTERM.

The event loop is ``config.loop``: trio, asyncio or uvloop, all started by
:func:`anyio.run`, so this one task tree serves on each of them::

    main task group
      signal watcher     first SIGINT/SIGTERM: Server.shutdown(); a second SIGINT: cancel all
      serve()            started with group.start, so the handle arrives once serving

When ``serve()`` returns the watcher is cancelled and the nursery closes. Expected
failures (a failed lifespan startup, an address that cannot be bound) are logged as
one line and turned into an exit code, never a traceback.
"""

from __future__ import annotations

import importlib.util
import logging
import signal
from typing import Any, Final

import anyio
import anyio.abc

from ._config import Config
from ._errors import LifespanFailure, one_line
from ._server._serve import Server, serve
from ._systemd import Notifier
from ._types import ASGIApp

logger = logging.getLogger("trio_asgi")

#: Exit codes of :func:`run` (and of the ``trio-asgi`` command).
EXIT_OK: Final = 0
EXIT_CANNOT_LISTEN: Final = 1
#: The configured loop cannot be used (``uvloop`` without the extra installed).
EXIT_NO_LOOP: Final = 2
EXIT_STARTUP_FAILED: Final = 3
#: After a forced stop (a second SIGINT): 128 + SIGINT, as shells report an interrupt.
EXIT_FORCED: Final = 130


class _Runner:
    """The state shared by the serve task and the signal watcher."""

    def __init__(self, app: ASGIApp, config: Config, install_signal_handlers: bool) -> None:
        self.app = app
        self.config = config
        self.install_signal_handlers = install_signal_handlers
        self.server: Server | None = None
        self.stopping_signal: str | None = None
        self.forced = False
        #: systemd's Type=notify readiness (does nothing without NOTIFY_SOCKET).
        self.notifier = Notifier.from_environ()

    async def main(self) -> None:
        async with anyio.create_task_group() as group:
            watcher = anyio.CancelScope()
            if self.install_signal_handlers:
                # Installed before serving starts, so a signal during startup is handled too.
                await group.start(self._watch_signals, watcher, group.cancel_scope)
            self.server = await group.start(self._serve, watcher)
            self.notifier.notify("READY=1", f"STATUS=Serving on {', '.join(self.server.addresses)}")

    async def _serve(
        self, watcher: anyio.CancelScope, *, task_status: anyio.abc.TaskStatus[Server]
    ) -> None:
        try:
            await serve(self.app, self.config, task_status=task_status)
        finally:
            watcher.cancel()  # serve() is over: nothing left to watch for

    async def _watch_signals(
        self,
        watcher: anyio.CancelScope,
        everything: anyio.CancelScope,
        *,
        task_status: anyio.abc.TaskStatus[None],
    ) -> None:
        with watcher, anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                self._on_signal(signal.Signals(signum), everything)

    def _on_signal(self, sig: signal.Signals, everything: anyio.CancelScope) -> None:
        if self.stopping_signal is None:
            self.stopping_signal = sig.name
            if self.server is None:
                # Still starting: there is nothing to drain, so stop at once.
                logger.info("Stopping during startup (signal %s)", sig.name)
                everything.cancel()
            else:
                logger.info("Shutting down (signal %s)...", sig.name)
                self.notifier.notify("STOPPING=1")
                self.server.shutdown()
        elif sig == signal.SIGINT:
            logger.warning("Second SIGINT: forcing shutdown, cancelling what is still running")
            self.forced = True
            everything.cancel()
        else:
            logger.info("Already shutting down (signal %s); send SIGINT to force it", sig.name)


def run(app: ASGIApp, config: Config, *, install_signal_handlers: bool = True) -> int:
    """Serve ``app`` until stopped; synchronous, for the command and ``__main__`` blocks.

    Args:
        app: An ASGI 3 app (see :func:`trio_asgi._app.adapt_app` for ASGI 2 ones).
        config: Where to listen and everything else.
        install_signal_handlers: Handle SIGINT and SIGTERM: the first starts a
            graceful shutdown, a second SIGINT forces one. Without them, Ctrl+C
            raises :exc:`KeyboardInterrupt` as usual.

    Returns:
        The exit code: 0 after a clean stop, 1 when an address could not be bound,
        2 when ``config.loop`` is ``uvloop`` and uvloop is not installed, 3 when
        lifespan startup failed, 130 after a forced stop.
    """
    if config.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        logger.error(
            "Cannot use --loop uvloop: uvloop is not installed (pip install 'trio-asgi[uvloop]')"
        )
        return EXIT_NO_LOOP
    runner = _Runner(app, config, install_signal_handlers)
    backend, options = _BACKENDS[config.loop]
    try:
        anyio.run(runner.main, backend=backend, backend_options=options)
    except BaseException as exc:
        failure = _expected_failure(exc, runner)
        if failure is None:
            raise
    else:
        return EXIT_FORCED if runner.forced else EXIT_OK
    code, message = failure
    logger.error("%s", message)
    return code


#: anyio's backend name and options for each ``Config.loop``.
_BACKENDS: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "trio": ("trio", {}),
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
}


def _expected_failure(exc: BaseException, runner: _Runner) -> tuple[int, str] | None:
    """The exit code and log line for a failure that needs no traceback."""
    # The nurseries wrap errors in exception groups; expected ones come alone.
    leaf = _only_leaf(exc)
    if isinstance(leaf, LifespanFailure):
        return EXIT_STARTUP_FAILED, f"Cannot start: {one_line(leaf)}"
    if isinstance(leaf, OSError) and runner.server is None:
        # Bind errors from open_listeners carry the address in strerror.
        where = f" on {leaf.strerror}" if leaf.strerror else f": {one_line(leaf)}"
        return EXIT_CANNOT_LISTEN, f"Cannot listen{where}"
    return None


def _only_leaf(exc: BaseException) -> BaseException:
    """The one exception inside (nested) single-member groups, or ``exc`` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
