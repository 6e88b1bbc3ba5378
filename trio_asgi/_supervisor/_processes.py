"""The supervisor's I/O on trio: worker processes, their control sockets, signals, time.

The task tree (each level owns the next)::

    supervisor nursery
      signal watcher     SIGINT, SIGTERM, SIGHUP, SIGTTIN, SIGTTOU -> Signalled events
      ticker             Tick events (heartbeat deadlines, back-off, overstaying drains)
      worker task * N    owns one process: spawns it, reads its messages, waits for it

Every event goes through one channel to :meth:`Supervisor.run`, which feeds it to
the :class:`~._policy.Policy` and performs the actions it returns. Nothing here
decides anything; the policy does.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import trio

from .._config import Config
from .._systemd import Notifier
from . import _policy as p
from ._spec import BEAT, READY, RECYCLE, WORKER_MODULE, WorkerSpec, parse_message, spec_bytes

logger = logging.getLogger("trio_asgi")

TICK = 0.25
#: How long to wait for a worker's last messages once it exited.
LAST_WORDS_TIMEOUT = 1.0
#: Events queued for the policy; producers wait when it is full.
EVENT_QUEUE = 256

_COMMANDS = {
    signal.SIGTERM: p.Command.STOP,
    signal.SIGINT: p.Command.FORCE,  # the policy treats a first one as STOP
    signal.SIGHUP: p.Command.RESTART,
    signal.SIGTTIN: p.Command.MORE,
    signal.SIGTTOU: p.Command.FEWER,
}


#: The signal that performs each action on a worker.
_SIGNALS: dict[type, signal.Signals] = {
    p.Drain: signal.SIGTERM,
    p.Force: signal.SIGINT,
    p.Kill: signal.SIGKILL,
}


def drain_limit(config: Config) -> float:
    """How long a draining worker may take: its grace period and lifespan shutdown."""
    grace, lifespan = config.timeout_graceful_shutdown, config.timeout_lifespan_shutdown
    if grace is None or lifespan is None:
        return math.inf
    return grace + lifespan + p.KILL_MARGIN


def worker_command(control_fd: int) -> list[str]:
    return [sys.executable, "-m", WORKER_MODULE, str(control_fd)]


#: The status reported for a worker whose process could not even be spawned.
EXIT_CANNOT_SPAWN = 127

OnMessage = Callable[[bytes, int], Awaitable[None]]


class WorkerProcess:
    """One worker's process and control socket; the task in :meth:`run` owns both."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.process: trio.Process | None = None
        #: A signal asked for before the process existed, delivered once it does.
        self.pending_signal: signal.Signals | None = None

    async def run(self, on_spawned: Callable[[int], Awaitable[None]], on_message: OnMessage) -> int:
        """Spawn, report messages, and return the exit status once the process is gone."""
        ours, theirs = socket.socketpair()
        try:
            with theirs:
                self.process = await trio.lowlevel.open_process(
                    worker_command(theirs.fileno()),
                    pass_fds=(*self.spec.socket_fds, theirs.fileno()),
                )
            control = trio.socket.from_stdlib_socket(ours)
            await _send_all(control, spec_bytes(self.spec))
            if self.pending_signal is not None:
                self.signal(self.pending_signal)
            await on_spawned(self.process.pid)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_read_messages, control, on_message)
                status = await self.process.wait()
                # Messages sent just before exiting (the final count) are still buffered.
                nursery.cancel_scope.deadline = trio.current_time() + LAST_WORDS_TIMEOUT
            return status
        finally:
            ours.close()
            if self.process is not None and self.process.returncode is None:
                self.process.kill()
                with trio.CancelScope(shield=True):
                    await self.process.wait()  # bounded: SIGKILL cannot be ignored

    def signal(self, sig: signal.Signals) -> None:
        if self.process is None:
            self.pending_signal = sig
        elif self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)


async def _send_all(control: trio.socket.SocketType, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[await control.send(view) :]


async def _read_messages(control: trio.socket.SocketType, on_message: OnMessage) -> None:
    pending = b""
    while True:
        try:
            data = await control.recv(4096)
        except OSError:
            return
        if not data:
            return
        *lines, pending = (pending + data).split(b"\n")
        if len(pending) > 1024:
            pending = b""  # not one of our messages; drop it rather than grow
        for line in lines:
            await on_message(*parse_message(line))


class Supervisor:
    """Run the workers of one ``--workers`` command until it stops; see the module doc."""

    def __init__(
        self,
        config: Config,
        base_spec: WorkerSpec,
        workers: int,
        sockets: Sequence[socket.socket] = (),
    ) -> None:
        self.config = config
        self.sockets = sockets
        self.notifier = Notifier.from_environ()
        self.base_spec = base_spec
        self.policy = p.Policy(
            target=workers,
            healthcheck=config.timeout_worker_healthcheck,
            drain_limit=drain_limit(config),
        )
        self.processes: dict[int, WorkerProcess] = {}
        self._send, self._receive = trio.open_memory_channel[p.Event](EVENT_QUEUE)

    async def run(self) -> int:
        """Supervise until every worker is gone; the exit code."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self._watch_signals)
            nursery.start_soon(self._tick)
            code = await self._handle_events(nursery)
            nursery.cancel_scope.cancel()
        return code

    async def _handle_events(self, nursery: trio.Nursery) -> int:
        event: p.Event = p.Tick(trio.current_time())
        while True:
            for action in self.policy.handle(event):
                if isinstance(action, p.Exit):
                    return action.code
                await self._perform(action, nursery)
            event = await self._receive.receive()

    async def _perform(self, action: p.Action, nursery: trio.Nursery) -> None:
        if isinstance(action, p.Log):
            logger.log(action.level, "%s", action.message)
        elif isinstance(action, p.Spawn):
            await nursery.start(self._run_worker, action.worker)
        elif isinstance(action, p.Notify):
            self.notifier.notify(*action.fields)
        elif isinstance(action, p.StopListening):
            for sock in self.sockets:
                sock.close()
        elif isinstance(action, p.Drain | p.Force | p.Kill):
            worker = self.processes.get(action.worker)
            if worker is not None:
                worker.signal(_SIGNALS[type(action)])

    def _spec_for_next_worker(self) -> WorkerSpec:
        config = self.config
        limit = config.limit_max_requests
        if limit is not None:
            limit += random.randint(0, config.limit_max_requests_jitter)
        healthcheck = config.timeout_worker_healthcheck
        interval = 1.0 if healthcheck is None else min(1.0, healthcheck / 4)
        return replace(self.base_spec, max_requests=limit, heartbeat_interval=interval)

    async def _run_worker(self, worker_id: int, *, task_status: trio.TaskStatus[None]) -> None:
        worker = self.processes[worker_id] = WorkerProcess(self._spec_for_next_worker())
        task_status.started()  # the process is spawned in this task, which owns it

        async def on_spawned(pid: int) -> None:
            await self._send.send(p.Spawned(worker_id, pid, trio.current_time()))

        async def on_message(kind: bytes, number: int) -> None:
            now = trio.current_time()
            if kind == READY:
                await self._send.send(p.Ready(worker_id, now))
            elif kind == BEAT:
                await self._send.send(p.Heartbeat(worker_id, number, now))
            elif kind == RECYCLE:
                await self._send.send(p.WantsRecycling(worker_id, now))

        try:
            status = await worker.run(on_spawned, on_message)
        except OSError as exc:
            logger.error("Cannot start a worker process: %s", exc)  # noqa: TRY400 - one line
            status = EXIT_CANNOT_SPAWN
        finally:
            self.processes.pop(worker_id, None)
        await self._send.send(p.Exited(worker_id, status, trio.current_time()))

    async def _watch_signals(self, *, task_status: trio.TaskStatus[None]) -> None:
        with trio.open_signal_receiver(*_COMMANDS) as signals:
            task_status.started()
            async for signum in signals:
                command = _COMMANDS[signal.Signals(signum)]
                await self._send.send(p.Signalled(command, trio.current_time()))

    async def _tick(self) -> None:
        while True:
            await trio.sleep(TICK)
            await self._send.send(p.Tick(trio.current_time()))
