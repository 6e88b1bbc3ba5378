"""``run()``: serve an app in the foreground, stopping cleanly on SIGINT and SIGTERM.

The event loop is ``config.loop``: trio, asyncio or uvloop, all started by
:func:`anyio.run`, so this one task tree serves on each of them; ``auto`` (the
default) picks asyncio when the app imports an asyncio-only library, else trio (see
:mod:`._loop_choice`)::

    main task group
      signal watcher     first SIGINT/SIGTERM: Server.shutdown(); a second SIGINT: cancel all;
                         with TLS, SIGHUP: Server.reload_tls() (new connections get the new
                         certificate; without TLS, SIGHUP keeps its default action)
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

from ._app import adapt_app, load_app
from ._config import Config
from ._errors import AppLoadError, ConfigError, LifespanFailure, one_line
from ._logging import configure_logging
from ._loop_choice import choose_loop
from ._server._serve import Server, serve
from ._systemd import Notifier
from ._types import ASGIApp

logger = logging.getLogger("trio_asgi")

#: Exit codes of :func:`run` (and of the ``trio-asgi`` command).
EXIT_OK: Final = 0
#: An address cannot be bound (a port in use): a startup failure, as in Uvicorn.
EXIT_CANNOT_LISTEN: Final = 3
#: The configured loop cannot be used (``uvloop`` without the extra installed).
EXIT_NO_LOOP: Final = 2
#: The configuration cannot be used (a TLS certificate that does not load).
EXIT_USAGE: Final = 2
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
        with watcher, anyio.open_signal_receiver(*_signals(self.config)) as signals:
            task_status.started()
            async for signum in signals:
                self._on_signal(signal.Signals(signum), everything)

    def _on_signal(self, sig: signal.Signals, everything: anyio.CancelScope) -> None:
        if sig.name == "SIGHUP":
            if self.server is not None and self.stopping_signal is None:
                logger.info("Reloading the TLS certificate (signal SIGHUP)")
                self.server.reload_tls()
            return
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


def run(
    app: ASGIApp | str,
    config: Config | None = None,
    *,
    install_signal_handlers: bool = True,
    log_level: str | None = "info",
    factory: bool = False,
) -> int:
    """Serve ``app`` until stopped; synchronous, for ``if __name__ == "__main__"`` blocks.

    Sets up logging as the command does (unless ``log_level`` is ``None``), loads the
    app if it is given as ``"module:attr"``, then runs :func:`serve_in_foreground`.

    Args:
        app: An ASGI app (ASGI 2 ones are adapted), or ``"module:attr"`` naming one.
        config: Where to listen and everything else (``Config()`` if omitted).
        install_signal_handlers: See :func:`serve_in_foreground`.
        log_level: The level of the ``trio_asgi`` loggers, whose lines go to stderr
            (access lines to stdout), as with the command; ``None`` leaves logging to
            the calling program.
        factory: ``app`` names a factory: call it to get the app.

    Returns:
        The exit code (see :func:`serve_in_foreground`); 3 when ``app`` cannot be
        loaded, after one log line that says why.
    """
    config = config or Config()
    if log_level is not None:
        configure_logging(log_level)
    if isinstance(app, str):
        try:
            app = adapt_app(load_app(app, factory=factory), config.interface)
        except AppLoadError as exc:
            logger.error("Cannot load the app: %s", exc)  # noqa: TRY400 - one line, no traceback
            return EXIT_STARTUP_FAILED
    return serve_in_foreground(app, config, install_signal_handlers=install_signal_handlers)


def serve_in_foreground(
    app: ASGIApp, config: Config, *, install_signal_handlers: bool = True
) -> int:
    """Serve ``app`` until stopped, on ``config.loop``; logging is the caller's.

    Args:
        app: An ASGI 3 app (see :func:`trio_asgi._app.adapt_app` for ASGI 2 ones).
        config: Where to listen and everything else.
        install_signal_handlers: Handle SIGINT and SIGTERM: the first starts a
            graceful shutdown, a second SIGINT forces one; with TLS, SIGHUP reloads
            the certificate. Without them, Ctrl+C raises :exc:`KeyboardInterrupt` as usual.

    The loop is ``config.loop``; with ``auto`` it is chosen now, from what the app
    imported, and logged with the reason.

    Returns:
        The exit code: 0 after a clean stop, 2 when ``config.loop`` is ``uvloop`` and
        uvloop is not installed or a TLS file cannot be loaded, 3 when lifespan
        startup failed or an address could not be bound, 130 after a forced stop.
    """
    choice = choose_loop(config.loop)
    if choice.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        logger.error(
            "Cannot use --loop uvloop: uvloop is not installed (pip install 'trio-asgi[uvloop]')"
        )
        return EXIT_NO_LOOP
    logger.info("%s", choice.log_line())
    runner = _Runner(app, config, install_signal_handlers)
    backend, options = _BACKENDS[choice.loop]
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


def _signals(config: Config) -> tuple[signal.Signals, ...]:
    """The signals the watcher handles: SIGHUP too when there is a certificate to reload.

    Without TLS, SIGHUP keeps its default action (a closed terminal ends the server).
    """
    if config.ssl_certfile is not None and hasattr(signal, "SIGHUP"):
        return (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    return (signal.SIGINT, signal.SIGTERM)


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
    if isinstance(leaf, ConfigError):  # e.g. a TLS certificate that cannot be loaded
        return EXIT_USAGE, f"Cannot start: {leaf}"
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
