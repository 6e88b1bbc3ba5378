"""``--reload``: serve from a child process, restarted when a watched file changes.

For development. The reloader binds the sockets once (so the port stays taken
across restarts and clients only wait), starts one server process exactly like a
``--workers`` worker, and watches files with ``watchfiles`` (the ``reload``
extra). On a change it drains the child and starts a fresh one; when the child
exits by itself (an edit broke the import: one line in the log) it waits for the
next change instead of exiting. The tree::

    reloader nursery
      signal watcher     SIGINT/SIGTERM: stop the child, then exit 0
      file watcher       sets ``changed`` after each batch of relevant changes
      generation         one child process at a time (the task owns it)
"""

from __future__ import annotations

import fnmatch
import logging
import math
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from ._config import Config
from ._supervisor._binding import EXIT_STARTUP_FAILED, bind_for_workers, unlink_unix_sockets
from ._supervisor._processes import WorkerProcess, drain_limit
from ._supervisor._spec import AppTarget, LogSettings, WorkerSpec

logger = logging.getLogger("trio_asgi")

EXIT_USAGE = 2
DEFAULT_INCLUDES = ("*.py",)
DEFAULT_EXCLUDES = (".*", "*.pyc", "*~", "*.swp", "__pycache__", "*.egg-info")


def watched_dirs(config: Config, app_dir: str) -> list[Path]:
    """``reload_dir``, or the current directory and the app directory; no duplicates."""
    given = config.reload_dir or (".", app_dir)
    dirs: list[Path] = []
    for text in given:
        path = Path(text).resolve()
        if path not in dirs and not any(path.is_relative_to(d) for d in dirs):
            dirs.append(path)
    return dirs


class ChangeFilter:
    """Which changed paths reload: an include pattern matches, no exclude pattern does."""

    def __init__(self, includes: tuple[str, ...], excludes: tuple[str, ...]) -> None:
        self.includes = includes or DEFAULT_INCLUDES
        self.excludes = (*DEFAULT_EXCLUDES, *excludes)

    def __call__(self, change: object, path: str) -> bool:
        parts = Path(path).parts
        if any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in self.excludes):
            return False
        name = parts[-1] if parts else path
        return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(path, p) for p in self.includes)


class Reloader:
    def __init__(self, config: Config, spec: WorkerSpec, dirs: list[Path]) -> None:
        self.config = config
        self.spec = spec
        self.dirs = dirs
        self.changed = trio.Event()
        self.stop = trio.Event()

    async def run(self) -> int:
        async with trio.open_nursery() as nursery:
            await nursery.start(self._watch_signals)
            await nursery.start(self._watch_files)
            while not self.stop.is_set():
                await self._one_generation()
            nursery.cancel_scope.cancel()
        return 0

    async def _one_generation(self) -> None:
        self.changed = trio.Event()
        child = WorkerProcess(self.spec)
        exited = trio.Event()
        status: list[int] = []

        async def serve() -> None:
            status.append(await child.run(_ignore_pid, _ignore_message))
            exited.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            await _first_of(self.changed.wait, exited.wait, self.stop.wait)
            if not exited.is_set():
                child.signal(signal.SIGTERM)
                with trio.move_on_after(drain_limit(self.config)):
                    await exited.wait()
                child.signal(signal.SIGKILL)  # only if it is still there
        if exited.is_set() and not self.changed.is_set() and not self.stop.is_set():
            logger.error("The server exited (exit code %s); waiting for a file change", status[0])
            await _first_of(self.changed.wait, self.stop.wait)

    async def _watch_files(self, *, task_status: trio.TaskStatus[None]) -> None:
        import watchfiles

        config = self.config
        delay = config.reload_delay or 0.0
        changes = watchfiles.awatch(
            *self.dirs,
            watch_filter=ChangeFilter(config.reload_include, config.reload_exclude),
            debounce=max(1, int(delay * 1000)),
            step=50,
            stop_event=self.stop,  # its thread polls is_set()
        )
        logger.info("Watching for changes in %s", ", ".join(map(str, self.dirs)))
        task_status.started()
        async for batch in changes:
            names = sorted({Path(path).name for _, path in batch})
            logger.info("Changed: %s; reloading", ", ".join(names[:5]))
            self.changed.set()

    async def _watch_signals(self, *, task_status: trio.TaskStatus[None]) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                logger.info("Stopping (signal %s)", signal.Signals(signum).name)
                self.stop.set()


async def _first_of(*waits: Callable[[], Awaitable[object]]) -> None:
    async with trio.open_nursery() as nursery:
        for wait in waits:

            async def run(wait: Callable[[], Awaitable[object]] = wait) -> None:
                await wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(run)


async def _ignore_pid(pid: int) -> None:
    pass  # the child logs its own start


async def _ignore_message(kind: bytes, number: int) -> None:
    pass


def run_reloader(config: Config, app: AppTarget, log: LogSettings) -> int:
    """Serve with ``--reload`` until SIGINT/SIGTERM; the exit code."""
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        logger.error("--reload needs watchfiles: pip install 'trio-asgi[reload]'")  # noqa: TRY400
        return EXIT_USAGE
    bound = bind_for_workers(config)
    if bound is None:
        return EXIT_STARTUP_FAILED
    sockets, addresses = bound
    try:
        for address in addresses:
            url = address if address.startswith(("unix:", "fd:")) else f"http://{address}"
            logger.info("Listening on %s", url)
        logger.info("Started reloader process [%d]", os.getpid())
        spec = WorkerSpec(
            config=config,
            app=app,
            log=log,
            socket_fds=tuple(sock.fileno() for sock in sockets),
            supervised=False,
            heartbeat_interval=math.inf,
        )
        return trio.run(Reloader(config, spec, watched_dirs(config, app.app_dir)).run)
    finally:
        for sock in sockets:
            sock.close()
        unlink_unix_sockets(config)
