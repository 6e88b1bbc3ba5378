"""The supervisor's decisions, without I/O: which worker to start, drain or kill, and when.

Theory of operation. The supervisor keeps ``target`` workers serving. Each worker
goes through the phases of :class:`Phase`::

    STARTING --ready--> SERVING --drain--> DRAINING --exit--> (gone)
        \\__________________ exit / kill ______________________/

A worker that must be replaced (SIGHUP, ``limit_max_requests``, SIGTTOU) is marked
*retiring* and keeps serving until a fresh worker is ready in its place: only then
is it told to drain. That is the rolling restart: at no moment are fewer than
``target`` workers accepting. Events come in through :meth:`Policy.handle` and
come back out as a list of actions for the I/O layer to perform; time is an input
(every event carries ``now``), so the table is tested synchronously.

Failure rules: a worker that dies after it was ready is replaced at once. Deaths
before ready back off (0.5 s, doubling, at most :data:`MAX_BACKOFF`); while no
worker has ever been ready, a worker that exits with :data:`EXIT_STARTUP_FAILED`
(its app cannot load, or lifespan startup failed) or :data:`MAX_STARTUP_FAILURES`
deaths in a row stop the supervisor with exit code 3: no restart loop.
"""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass, field

#: A worker's exit code when its app cannot be loaded or its lifespan startup failed.
EXIT_STARTUP_FAILED = 3
#: The supervisor's exit code after a forced stop (second SIGINT).
EXIT_FORCED = 130
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 4.0
#: Deaths before ready in a row, while no worker was ever ready, before giving up.
MAX_STARTUP_FAILURES = 5
#: Added to a draining worker's own deadlines before it is killed as overstaying.
KILL_MARGIN = 1.0


class Phase(enum.Enum):
    #: Spawned; importing the app and running lifespan startup.
    STARTING = "starting"
    #: Reported ready: lifespan startup done and accepting.
    SERVING = "serving"
    #: Told to stop (SIGTERM): finishing its connections, then lifespan shutdown.
    DRAINING = "draining"


class Command(enum.Enum):
    """What a signal asks of the supervisor."""

    STOP = "stop"  # SIGTERM, first SIGINT
    FORCE = "force"  # second SIGINT
    RESTART = "restart"  # SIGHUP: rolling restart
    MORE = "more"  # SIGTTIN
    FEWER = "fewer"  # SIGTTOU


# --- events (inputs) -----------------------------------------------------------------------


@dataclass(frozen=True)
class Spawned:
    worker: int
    pid: int
    now: float


@dataclass(frozen=True)
class Ready:
    worker: int
    now: float


@dataclass(frozen=True)
class Heartbeat:
    worker: int
    served: int
    now: float


@dataclass(frozen=True)
class WantsRecycling:
    """The worker served its ``limit_max_requests``."""

    worker: int
    now: float


@dataclass(frozen=True)
class Exited:
    worker: int
    #: The exit code, or minus the signal number that killed it (as ``Popen.returncode``).
    status: int
    now: float


@dataclass(frozen=True)
class Signalled:
    command: Command
    now: float


@dataclass(frozen=True)
class Tick:
    now: float


Event = Spawned | Ready | Heartbeat | WantsRecycling | Exited | Signalled | Tick

# --- actions (outputs) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Spawn:
    worker: int


@dataclass(frozen=True)
class Drain:
    """Send SIGTERM: stop accepting, finish, run lifespan shutdown, exit."""

    worker: int


@dataclass(frozen=True)
class Force:
    """Send SIGINT after SIGTERM: the worker cancels what is left."""

    worker: int


@dataclass(frozen=True)
class Kill:
    worker: int


@dataclass(frozen=True)
class StopListening:
    """Close the supervisor's copies of the listening sockets: no worker will start again,
    and once the draining workers close theirs, new connections are refused."""


@dataclass(frozen=True)
class Notify:
    """Tell systemd (``sd_notify``): ``READY=1``, ``STOPPING=1``, ``STATUS=...``."""

    fields: tuple[str, ...]


@dataclass(frozen=True)
class Log:
    level: int
    message: str


@dataclass(frozen=True)
class Exit:
    code: int


Action = Spawn | Drain | Force | Kill | StopListening | Notify | Log | Exit


@dataclass
class Worker:
    id: int
    phase: Phase = Phase.STARTING
    pid: int | None = None
    spawned_at: float = 0.0
    #: Replace this worker once a fresh one is ready.
    retiring: bool = False
    last_beat: float | None = None
    served: int = 0
    drain_deadline: float = math.inf
    killed: bool = False

    @property
    def name(self) -> str:
        return f"worker {self.pid}" if self.pid is not None else f"worker #{self.id}"


@dataclass
class Policy:
    """The supervisor's state and rules; see the module docstring."""

    target: int
    #: Seconds without a heartbeat before a worker is killed (``None``: never).
    healthcheck: float | None = 5.0
    #: How long a draining worker may take before it is killed (``inf``: never).
    drain_limit: float = math.inf
    workers: dict[int, Worker] = field(default_factory=dict)
    stopping: bool = False
    forced: bool = False
    stopped_listening: bool = False
    announced_ready: bool = False
    exit_code: int | None = None
    ever_ready: bool = False
    startup_failures: int = 0
    next_spawn_at: float = 0.0
    #: Requests served by workers that have exited.
    served_by_gone: int = 0
    workers_started: int = 0
    _next_id: int = 1

    # --- the entry point -------------------------------------------------------------------

    def handle(self, event: Event) -> list[Action]:
        """Apply ``event``; return what the I/O layer must do, in order."""
        actions: list[Action] = []
        worker = self.workers.get(getattr(event, "worker", -1))
        if type(event) is Signalled:
            self._on_command(event.command, event.now, actions)
        elif type(event) is Tick:
            self._check_health(event.now, actions)
        elif worker is None:
            pass  # a late message from a worker already gone
        elif type(event) is Spawned:
            worker.pid, worker.spawned_at = event.pid, event.now
            actions.append(Log(logging.INFO, f"Spawned worker {event.pid}"))
        elif type(event) is Ready:
            self._on_ready(worker, actions)
        elif type(event) is Heartbeat:
            worker.last_beat, worker.served = event.now, max(worker.served, event.served)
        elif type(event) is WantsRecycling:
            if not worker.retiring and worker.phase is Phase.SERVING:
                actions.append(Log(logging.INFO, f"{worker.name}: request limit reached"))
                worker.retiring = True
        elif type(event) is Exited:
            self._on_exit(worker, event.status, event.now, actions)
        self._reconcile(_now(event), actions)
        return actions

    def served(self) -> int:
        """Requests served by every worker so far (the gone ones included)."""
        return self.served_by_gone + sum(w.served for w in self.workers.values())

    # --- rules -----------------------------------------------------------------------------

    def _on_command(self, command: Command, now: float, actions: list[Action]) -> None:
        if command is Command.FORCE and self.stopping:
            self.forced = True
            actions.append(Log(logging.WARNING, "Second SIGINT: forcing the workers to stop"))
            actions.extend(Force(w.id) for w in self.workers.values())
        elif command in (Command.STOP, Command.FORCE):
            if not self.stopping:
                self.stopping = True
                actions.append(Log(logging.INFO, f"Stopping {len(self.workers)} worker(s)"))
        elif self.stopping:
            return
        elif command is Command.RESTART:
            actions.append(Log(logging.INFO, "Rolling restart: replacing every worker"))
            for worker in self.workers.values():
                if worker.phase is not Phase.DRAINING:
                    worker.retiring = True
        elif command is Command.MORE:
            self.target += 1
            actions.append(Log(logging.INFO, f"Workers: {self.target} (SIGTTIN)"))
        elif command is Command.FEWER and self.target > 1:
            self.target -= 1
            actions.append(Log(logging.INFO, f"Workers: {self.target} (SIGTTOU)"))
            self._retire_one_extra()

    def _retire_one_extra(self) -> None:
        # Prefer a worker that is not serving yet, then the newest.
        fresh = [w for w in self.workers.values() if _is_fresh(w)]
        if len(fresh) > self.target:
            fresh.sort(key=lambda w: (w.phase is Phase.SERVING, -w.id))
            fresh[0].retiring = True

    def _on_ready(self, worker: Worker, actions: list[Action]) -> None:
        if worker.phase is not Phase.STARTING:
            return
        worker.phase = Phase.SERVING
        self.ever_ready = True
        self.startup_failures = 0
        actions.append(Log(logging.INFO, f"{worker.name} is ready"))
        serving = sum(1 for w in self.workers.values() if w.phase is Phase.SERVING)
        status = f"STATUS={serving} worker(s) serving"
        if serving >= self.target and not self.announced_ready:
            self.announced_ready = True
            actions.append(Notify(("READY=1", status)))
        else:
            actions.append(Notify((status,)))

    def _on_exit(self, worker: Worker, status: int, now: float, actions: list[Action]) -> None:
        del self.workers[worker.id]
        self.served_by_gone += worker.served
        how = f"exit code {status}" if status >= 0 else f"signal {-status}"
        summary = f"{worker.name} exited ({how}) after serving {worker.served} request(s)"
        expected = worker.phase is Phase.DRAINING or self.stopping
        if expected and not worker.killed:
            actions.append(Log(logging.INFO, summary))
            return
        actions.append(Log(logging.WARNING if worker.killed else logging.ERROR, summary))
        if worker.phase is not Phase.STARTING or self.stopping:
            return
        self.startup_failures += 1
        if not self.ever_ready and (
            status == EXIT_STARTUP_FAILED or self.startup_failures >= MAX_STARTUP_FAILURES
        ):
            actions.append(Log(logging.ERROR, "The app cannot start: stopping the supervisor"))
            self.exit_code = EXIT_STARTUP_FAILED
            self.stopping = True
            return
        backoff = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (self.startup_failures - 1))
        self.next_spawn_at = now + backoff
        actions.append(Log(logging.WARNING, f"Worker died during startup; retrying in {backoff}s"))

    def _check_health(self, now: float, actions: list[Action]) -> None:
        for worker in self.workers.values():
            if worker.killed:
                continue
            if worker.phase is Phase.DRAINING and now >= worker.drain_deadline:
                reason = "still draining after its shutdown deadline"
            elif (
                self.healthcheck is not None
                and worker.last_beat is not None
                and now - worker.last_beat > self.healthcheck
            ):
                reason = f"no heartbeat for {self.healthcheck}s"
            else:
                continue
            worker.killed = True
            actions.append(Log(logging.WARNING, f"{worker.name}: {reason}; killing it"))
            actions.append(Kill(worker.id))

    def _reconcile(self, now: float, actions: list[Action]) -> None:
        """Spawn, drain and exit until the workers match the target (or the stop)."""
        if self.stopping and not self.stopped_listening:
            self.stopped_listening = True
            actions.append(StopListening())
            actions.append(Notify(("STOPPING=1",)))
        if self.stopping:
            for worker in self.workers.values():
                self._drain(worker, now, actions)
            if not self.workers:
                code = self.exit_code if self.exit_code is not None else 0
                self.exit_code = EXIT_FORCED if self.forced and code == 0 else code
                actions.append(Log(logging.INFO, self._farewell()))
                actions.append(Exit(self.exit_code))
            return
        fresh = [w for w in self.workers.values() if _is_fresh(w)]
        while len(fresh) < self.target and now >= self.next_spawn_at:
            fresh.append(self._spawn(actions))
        # A retiring worker drains once a fresh one serves in its place: one at a time,
        # so the number of workers accepting never drops below the target.
        serving = sum(1 for w in fresh if w.phase is Phase.SERVING)
        retiring = sorted(
            (w for w in self.workers.values() if w.retiring and w.phase is not Phase.DRAINING),
            key=lambda w: w.id,
        )
        still_serving = sum(1 for w in retiring if w.phase is Phase.SERVING)
        for worker in retiring:
            if worker.phase is Phase.STARTING:
                self._drain(worker, now, actions)
            elif serving + still_serving > self.target:
                self._drain(worker, now, actions)
                still_serving -= 1

    def _spawn(self, actions: list[Action]) -> Worker:
        worker = Worker(self._next_id)
        self._next_id += 1
        self.workers_started += 1
        self.workers[worker.id] = worker
        actions.append(Spawn(worker.id))
        return worker

    def _drain(self, worker: Worker, now: float, actions: list[Action]) -> None:
        if worker.phase is Phase.DRAINING:
            return
        worker.phase = Phase.DRAINING
        worker.drain_deadline = now + self.drain_limit
        actions.append(Drain(worker.id))

    def _farewell(self) -> str:
        return (
            f"Supervisor done: {self.workers_started} worker(s) started, "
            f"{self.served()} request(s) served in all"
        )


def _is_fresh(worker: Worker) -> bool:
    return not worker.retiring and worker.phase is not Phase.DRAINING


def _now(event: Event) -> float:
    return event.now
