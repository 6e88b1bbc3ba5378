"""``--workers N``: real supervisor and worker processes over real sockets."""

from __future__ import annotations

import os
import re
import signal
import socket
import time

import pytest
from process_helpers import server, wrk, wrk_result

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX processes and signals")


def distinct_pids(proc, want: int, timeout: float = 10.0) -> set[int]:
    """PIDs seen in responses, each on a new connection, until ``want`` distinct ones."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < want:
        assert time.monotonic() < deadline, f"only {seen} answered:\n{proc.log}"
        status, body, _ = proc.get()
        assert status == 200
        seen.add(int(body))
    return seen


def test_every_worker_serves_and_sigterm_stops_them_all() -> None:
    with server("--workers", "2", "--port", "0", "procapp:app") as proc:
        pids = set(proc.ready_pids(2))
        assert distinct_pids(proc, 2) == pids
        assert os.getpid() not in pids
        assert proc.process.pid not in pids
        proc.signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        log = proc.log
        for pid in pids:
            assert f"[{pid}] INFO     Started worker process [{pid}]" in log  # says which worker
            assert f"worker {pid} exited (exit code 0)" in log
            # Lifespan runs in each worker, shutdown included.
            assert f"lifespan.startup in {pid}" in log
            assert f"lifespan.shutdown in {pid}" in log
        assert "request(s) served in all" in log


def test_a_killed_worker_is_replaced_within_5s_while_the_other_serves() -> None:
    with server("--workers", "2", "--port", "0", "procapp:app") as proc:
        victim, survivor = proc.ready_pids(2)
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        # A new process runs within 5 s; it then needs its own import and lifespan startup,
        # which a busy machine may stretch, and the survivor serves all along.
        spawned = proc.wait_for(r"Spawned worker (\d+)", timeout=20, count=3)[2]
        assert time.monotonic() - killed_at < 5.0, proc.log
        new = int(spawned[1])
        while f"worker {new} is ready" not in proc.log:
            assert proc.get()[0] == 200
            assert time.monotonic() - killed_at < 30, proc.log
        assert f"worker {victim} exited (signal 9)" in proc.log
        assert distinct_pids(proc, 2) == {survivor, new}


def test_sighup_rolling_restart_under_load_loses_nothing() -> None:
    with server("--workers", "2", "--port", "0", "--no-access-log", "procapp:app") as proc:
        old = proc.ready_pids(2)
        # The load runs until the restart is over (then wrk is stopped and reports).
        load = wrk(proc.port, seconds=60, connections=64)
        proc.signal(signal.SIGHUP)  # new workers take far longer to start than wrk to connect
        for pid in old:
            proc.wait_for(rf"worker {pid} exited \(exit code 0\)", timeout=30)
        new = proc.ready_pids(4)[2:]
        assert load.poll() is None
        result = wrk_result(load, stop=True)
        assert result.socket_errors == {"connect": 0, "read": 0, "write": 0, "timeout": 0}, (
            result.output
        )
        assert result.non_2xx == 0, result.output
        assert result.requests > 0
        assert distinct_pids(proc, 2) == set(new)
        # The old workers drained with wrk's connections open: the case that loses requests.
        drained = [
            int(m[1])
            for pid in old
            for m in re.finditer(rf"\[{pid}\] INFO     Shutting down: waiting for (\d+)", proc.log)
        ]
        assert sum(drained) > 0, proc.log


def test_sigterm_lets_every_accepted_request_finish() -> None:
    with server("--workers", "2", "--port", "0", "procapp:app") as proc:
        proc.ready_pids(2)
        clients = []
        for _ in range(6):
            client = socket.create_connection(("127.0.0.1", proc.port), timeout=10)
            client.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            clients.append(client)
        proc.wait_for("slow request started", count=6)
        proc.signal(signal.SIGTERM)
        for client in clients:
            response = b""
            while chunk := client.recv(4096):
                response += chunk
            assert response.startswith(b"HTTP/1.1 200 "), response
            assert b"connection: close" in response.lower()
            client.close()
        assert proc.wait(20) == 0
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", proc.port), timeout=5)


def test_request_limit_recycles_workers_with_no_failed_request() -> None:
    args = ("--workers", "1", "--limit-max-requests", "300", "--limit-max-requests-jitter", "50")
    with server(*args, "--port", "0", "--no-access-log", "procapp:app") as proc:
        (first,) = proc.ready_pids(1)
        load = wrk(proc.port, seconds=60, connections=16)
        proc.wait_for(f"worker {first}: request limit reached", timeout=30)
        proc.wait_for(rf"worker {first} exited \(exit code 0\)", timeout=30)
        result = wrk_result(load, stop=True)
        assert result.socket_errors == {"connect": 0, "read": 0, "write": 0, "timeout": 0}, (
            result.output
        )
        assert result.non_2xx == 0, result.output


def test_an_app_that_fails_to_import_exits_3_without_a_restart_loop() -> None:
    started = time.monotonic()
    with server("--workers", "2", "--port", "0", "no_such_module:app") as proc:
        assert proc.wait(20) == 3
        assert time.monotonic() - started < 20
        assert proc.log.count("Started worker process") <= 2, proc.log
        assert "The app cannot start" in proc.log


def test_an_app_whose_startup_fails_exits_3_without_a_restart_loop() -> None:
    with server("--workers", "2", "--port", "0", "procapp:failing_startup") as proc:
        assert proc.wait(20) == 3
        assert proc.log.count("Started worker process") <= 2, proc.log
        assert "no database" in proc.log


def test_an_address_in_use_fails_fast_with_exit_3() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with server("--workers", "2", "--port", str(port), "procapp:app") as proc:
            assert proc.wait(10) == 3
            assert "Cannot listen on 127.0.0.1" in proc.log
            assert "Started worker" not in proc.log


def test_a_worker_whose_loop_blocks_is_replaced() -> None:
    args = ("--workers", "1", "--timeout-worker-healthcheck", "2")
    with server(*args, "--port", "0", "procapp:app") as proc:
        (blocked,) = proc.ready_pids(1)
        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as client:
            client.sendall(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
            proc.wait_for("blocking the event loop")
            proc.wait_for(f"worker {blocked}: no heartbeat for 2.0s; killing it")
        (new,) = [p for p in proc.ready_pids(2) if p != blocked]
        assert proc.get() == (200, str(new), proc.get()[2])


def test_sigttin_adds_and_sigttou_removes_a_worker() -> None:
    with server("--workers", "1", "--port", "0", "procapp:app") as proc:
        (first,) = proc.ready_pids(1)
        proc.signal(signal.SIGTTIN)
        second = proc.ready_pids(2)[1]
        assert distinct_pids(proc, 2) == {first, second}
        proc.signal(signal.SIGTTOU)
        proc.wait_for(rf"worker {second} exited \(exit code 0\)")
        assert {int(proc.get()[1]) for _ in range(4)} == {first}


def test_web_concurrency_sets_the_workers() -> None:
    with server("--port", "0", "procapp:app", env={"WEB_CONCURRENCY": "2"}) as proc:
        assert len(set(proc.ready_pids(2))) == 2


def test_reload_and_workers_are_refused_together() -> None:
    with server("--workers", "2", "--reload", "procapp:app") as proc:
        assert proc.wait(10) == 2
        assert "cannot be combined with workers" in proc.log


def test_reuse_port_workers_each_accept_on_their_own_socket() -> None:
    with server("--workers", "2", "--reuse-port", "--port", "0", "procapp:app") as proc:
        pids = set(proc.ready_pids(2))
        assert distinct_pids(proc, 2, timeout=20) == pids
        proc.signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_a_second_sigint_forces_the_workers() -> None:
    with server(
        "--workers", "1", "--timeout-graceful-shutdown", "60", "--port", "0", "procapp:app"
    ) as proc:
        proc.ready_pids(1)
        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as client:
            client.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
            proc.wait_for("hanging request started")
            proc.signal(signal.SIGINT)
            proc.wait_for(r"Draining \(SIGTERM\)")  # the hanging request holds the drain
            proc.signal(signal.SIGINT)
            assert proc.wait(20) == 130
            assert "forcing the workers to stop" in proc.log


def test_a_worker_that_overstays_its_drain_is_killed() -> None:
    args = (
        "--workers",
        "1",
        "--timeout-graceful-shutdown",
        "1",
        "--timeout-lifespan-shutdown",
        "1",
    )
    with server(
        *args, "--timeout-worker-healthcheck", "none", "--port", "0", "procapp:app"
    ) as proc:
        (stuck,) = proc.ready_pids(1)
        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as client:
            client.sendall(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
            proc.wait_for("blocking the event loop")
            proc.signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        assert f"worker {stuck}: still draining after its shutdown deadline; killing it" in proc.log
        assert f"worker {stuck} exited (signal 9)" in proc.log


def test_workers_drain_and_exit_when_the_supervisor_is_killed() -> None:
    with server("--workers", "2", "--port", "0", "procapp:app") as proc:
        workers = proc.ready_pids(2)
        proc.process.kill()
        proc.process.wait(10)
        for pid in workers:
            proc.wait_for(rf"\[{pid}\] WARNING  The supervisor is gone")
        deadline = time.monotonic() + 20
        while any(alive(pid) for pid in workers):
            assert time.monotonic() < deadline, proc.log
            time.sleep(0.02)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped yet has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False
