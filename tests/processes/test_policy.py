"""The supervisor's decisions, driven synchronously: events in, actions out, time as input."""

from __future__ import annotations

import itertools
import math

import pytest

from trio_asgi._supervisor import _policy as p
from trio_asgi._supervisor._policy import Command, Phase


def kinds(actions: list[p.Action]) -> list[str]:
    return [type(a).__name__ for a in actions if not isinstance(a, p.Log | p.Notify)]


def notified(actions: list[p.Action]) -> list[str]:
    return [f for a in actions if isinstance(a, p.Notify) for f in a.fields]


def of(actions: list[p.Action], kind: type) -> list[int]:
    return [a.worker for a in actions if isinstance(a, kind)]  # type: ignore[attr-defined]


def started(policy: p.Policy, now: float = 0.0) -> list[int]:
    """Start the policy and make every spawned worker ready; their ids."""
    ids = of(policy.handle(p.Tick(now)), p.Spawn)
    for worker in ids:
        policy.handle(p.Spawned(worker, 1000 + worker, now))
        policy.handle(p.Ready(worker, now))
    return ids


def test_starts_the_target_number_of_workers() -> None:
    policy = p.Policy(target=3)
    assert kinds(policy.handle(p.Tick(0.0))) == ["Spawn"] * 3
    assert kinds(policy.handle(p.Tick(1.0))) == []  # starting ones count


def test_a_worker_that_dies_after_ready_is_replaced_at_once() -> None:
    policy = p.Policy(target=2)
    first, _ = started(policy)
    actions = policy.handle(p.Exited(first, -9, 5.0))
    assert kinds(actions) == ["Spawn"]
    assert any("signal 9" in a.message for a in actions if isinstance(a, p.Log))


def test_startup_deaths_back_off_then_give_up_with_exit_3() -> None:
    policy = p.Policy(target=1)
    (worker,) = of(policy.handle(p.Tick(0.0)), p.Spawn)
    now, delays = 0.0, []
    for _ in range(p.MAX_STARTUP_FAILURES - 1):
        assert kinds(policy.handle(p.Exited(worker, 1, now))) == []
        delays.append(policy.next_spawn_at - now)
        assert kinds(policy.handle(p.Tick(policy.next_spawn_at - 0.01))) == []
        now = policy.next_spawn_at
        (worker,) = of(policy.handle(p.Tick(now)), p.Spawn)
    assert delays == [0.5, 1.0, 2.0, 4.0]
    assert sum(delays) < 20
    assert kinds(policy.handle(p.Exited(worker, 1, now))) == ["StopListening", "Exit"]
    assert policy.exit_code == p.EXIT_STARTUP_FAILED


def test_an_app_that_cannot_start_stops_everything_with_exit_3() -> None:
    policy = p.Policy(target=2)
    a, b = of(policy.handle(p.Tick(0.0)), p.Spawn)
    assert kinds(policy.handle(p.Exited(a, p.EXIT_STARTUP_FAILED, 0.1))) == [
        "StopListening",
        "Drain",
    ]
    assert kinds(policy.handle(p.Exited(b, p.EXIT_STARTUP_FAILED, 0.2))) == ["Exit"]
    assert policy.exit_code == 3


def test_after_a_first_success_startup_failures_only_back_off() -> None:
    policy = p.Policy(target=1)
    (a,) = started(policy)
    (b,) = of(policy.handle(p.Exited(a, -9, 1.0)), p.Spawn)
    for _ in range(10):
        assert kinds(policy.handle(p.Exited(b, p.EXIT_STARTUP_FAILED, 2.0))) == []
        (b,) = of(policy.handle(p.Tick(policy.next_spawn_at)), p.Spawn)
    assert policy.exit_code is None


def test_rolling_restart_drains_an_old_worker_only_once_a_new_one_serves() -> None:
    policy = p.Policy(target=2)
    old = started(policy)
    new = of(policy.handle(p.Signalled(Command.RESTART, 1.0)), p.Spawn)
    assert len(new) == 2
    assert kinds(policy.handle(p.Tick(2.0))) == []  # nothing drains before a new one serves
    assert of(policy.handle(p.Ready(new[0], 2.0)), p.Drain) == [old[0]]
    assert of(policy.handle(p.Exited(old[0], 0, 2.5)), p.Spawn) == []
    assert of(policy.handle(p.Ready(new[1], 3.0)), p.Drain) == [old[1]]
    policy.handle(p.Exited(old[1], 0, 3.5))
    assert sorted(policy.workers) == sorted(new)


def test_serving_workers_never_drop_below_target_during_a_restart() -> None:
    policy = p.Policy(target=3)
    started(policy)
    events = [p.Signalled(Command.RESTART, 1.0)]
    for event in events:
        policy.handle(event)
    now = 2.0
    while any(w.retiring for w in policy.workers.values()):
        serving = [w for w in policy.workers.values() if w.phase is Phase.SERVING]
        assert len(serving) >= 3
        starting = [w for w in policy.workers.values() if w.phase is Phase.STARTING]
        draining = [w for w in policy.workers.values() if w.phase is Phase.DRAINING]
        now += 1
        if draining:
            policy.handle(p.Exited(draining[0].id, 0, now))
        else:
            policy.handle(p.Ready(starting[0].id, now))


def test_request_limit_recycles_one_worker_without_a_gap() -> None:
    policy = p.Policy(target=1)
    (old,) = started(policy)
    (new,) = of(policy.handle(p.WantsRecycling(old, 1.0)), p.Spawn)
    assert of(policy.handle(p.WantsRecycling(old, 1.1)), p.Spawn) == []  # asked once is enough
    assert of(policy.handle(p.Ready(new, 2.0)), p.Drain) == [old]


def test_ttin_adds_and_ttou_removes_a_worker() -> None:
    policy = p.Policy(target=1)
    (a,) = started(policy)
    (b,) = of(policy.handle(p.Signalled(Command.MORE, 1.0)), p.Spawn)
    assert of(policy.handle(p.Signalled(Command.FEWER, 1.5)), p.Drain) == [b]  # not ready yet
    (c,) = of(policy.handle(p.Signalled(Command.MORE, 2.0)), p.Spawn)
    policy.handle(p.Ready(c, 2.1))
    assert of(policy.handle(p.Signalled(Command.FEWER, 3.0)), p.Drain) == [c]  # the newest
    assert kinds(policy.handle(p.Signalled(Command.FEWER, 4.0))) == []  # never below one
    assert policy.target == 1
    assert a in policy.workers


def test_a_silent_worker_is_killed_and_replaced() -> None:
    policy = p.Policy(target=1, healthcheck=2.0)
    (a,) = started(policy)
    policy.handle(p.Heartbeat(a, 10, 1.0))
    assert kinds(policy.handle(p.Tick(3.0))) == []
    assert of(policy.handle(p.Tick(3.1)), p.Kill) == [a]
    assert kinds(policy.handle(p.Tick(9.0))) == []  # killed once
    assert kinds(policy.handle(p.Exited(a, -9, 9.1))) == ["Spawn"]
    assert policy.served() == 10


def test_no_heartbeat_check_before_the_first_beat_or_when_off() -> None:
    policy = p.Policy(target=1, healthcheck=None)
    (a,) = started(policy)
    policy.handle(p.Heartbeat(a, 0, 0.0))
    assert kinds(policy.handle(p.Tick(1e6))) == []
    policy = p.Policy(target=1, healthcheck=1.0)
    started(policy)
    assert kinds(policy.handle(p.Tick(100.0))) == []


def test_systemd_hears_ready_once_all_serve_then_stopping() -> None:
    policy = p.Policy(target=2)
    a, b = of(policy.handle(p.Tick(0.0)), p.Spawn)
    assert notified(policy.handle(p.Ready(a, 1.0))) == ["STATUS=1 worker(s) serving"]
    assert notified(policy.handle(p.Ready(b, 1.0))) == ["READY=1", "STATUS=2 worker(s) serving"]
    (c,) = of(policy.handle(p.Exited(a, -9, 2.0)), p.Spawn)
    assert notified(policy.handle(p.Ready(c, 3.0))) == ["STATUS=2 worker(s) serving"]
    assert notified(policy.handle(p.Signalled(Command.STOP, 4.0))) == ["STOPPING=1"]


def test_stop_drains_every_worker_then_exits_0() -> None:
    policy = p.Policy(target=2, drain_limit=10.0)
    a, b = started(policy)
    actions = policy.handle(p.Signalled(Command.STOP, 1.0))
    assert sorted(of(actions, p.Drain)) == [a, b]
    assert kinds(actions)[0] == "StopListening"
    assert kinds(policy.handle(p.Signalled(Command.STOP, 1.5))) == []
    assert kinds(policy.handle(p.Exited(a, 0, 2.0))) == []  # not replaced
    assert of(policy.handle(p.Tick(11.1)), p.Kill) == [b]  # overstayed
    actions = policy.handle(p.Exited(b, -9, 11.2))
    assert kinds(actions) == ["Exit"]
    assert policy.exit_code == 0


def test_second_sigint_forces_and_exits_130() -> None:
    policy = p.Policy(target=1)
    (a,) = started(policy)
    assert kinds(policy.handle(p.Signalled(Command.FORCE, 1.0))) == ["StopListening", "Drain"]
    assert kinds(policy.handle(p.Signalled(Command.FORCE, 1.1))) == ["Force"]
    assert kinds(policy.handle(p.Exited(a, 130, 1.2))) == ["Exit"]
    assert policy.exit_code == p.EXIT_FORCED


def test_commands_while_stopping_change_nothing() -> None:
    policy = p.Policy(target=1)
    started(policy)
    policy.handle(p.Signalled(Command.STOP, 1.0))
    for command in (Command.RESTART, Command.MORE, Command.FEWER):
        assert kinds(policy.handle(p.Signalled(command, 2.0))) == []


EVENTS = [
    lambda w, t: p.Spawned(w, 99, t),
    lambda w, t: p.Ready(w, t),
    lambda w, t: p.Heartbeat(w, 5, t),
    lambda w, t: p.WantsRecycling(w, t),
    lambda w, t: p.Exited(w, 0, t),
    lambda w, t: p.Exited(w, 3, t),
    lambda w, t: p.Tick(t),
] + [lambda w, t, c=c: p.Signalled(c, t) for c in Command]


@pytest.mark.parametrize(("first", "second"), list(itertools.product(range(len(EVENTS)), repeat=2)))
def test_every_pair_of_events_keeps_the_invariants(first: int, second: int) -> None:
    # From each worker phase, any two events: the policy never loses track of a worker,
    # never drains twice, and only exits once every worker is gone.
    for phase in Phase:
        policy = p.Policy(target=2, healthcheck=1.0, drain_limit=5.0)
        ids = started(policy)
        worker = policy.workers[ids[0]]
        if phase is Phase.STARTING:
            worker.phase = Phase.STARTING
        elif phase is Phase.DRAINING:
            policy.handle(p.Signalled(Command.FEWER, 0.0))
            worker = next(w for w in policy.workers.values() if w.phase is Phase.DRAINING)
        drained: set[int] = set()
        for t, make in ((1.0, EVENTS[first]), (10.0, EVENTS[second])):
            for action in policy.handle(make(worker.id, t)):
                if isinstance(action, p.Drain):
                    assert action.worker not in drained
                    drained.add(action.worker)
                if isinstance(action, p.Exit):
                    assert not policy.workers
                if isinstance(action, p.Spawn):
                    assert action.worker in policy.workers
        assert policy.target >= 1
        assert math.isfinite(policy.next_spawn_at)
