"""The asyncio virtual clock: it jumps only when every task waits, and never skips work.

These are plain synchronous tests that run their own loop (``asyncio.Runner`` or
``anyio.run``), so what they check does not depend on any pytest plugin.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import anyio
import pytest
import trio

from trio_asgi.testing import open_test_server
from trio_asgi.testing._virtual_clock import VirtualClockEventLoop, wait_all_tasks_blocked

T = TypeVar("T")


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main`` on a fresh virtual-clock loop, and check it took no real time to speak of."""
    started = time.monotonic()
    with asyncio.Runner(loop_factory=VirtualClockEventLoop) as runner:
        result = runner.run(main())
    assert time.monotonic() - started < 5  # virtual hours, real milliseconds
    return result


def test_time_starts_at_zero_and_jumps_to_each_deadline() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        seen = [loop.time()]
        await asyncio.sleep(3600)
        seen.append(loop.time())
        await asyncio.sleep(0.25)
        seen.append(loop.time())
        return seen

    assert run(main) == [0.0, 3600.0, 3600.25]


def test_timers_fire_in_order_at_their_own_times() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        fired: list[tuple[str, float]] = []
        done = loop.create_future()

        def fire(name: str) -> None:
            fired.append((name, loop.time()))
            if name == "last":
                done.set_result(None)

        for name, delay in [("c", 3.0), ("a", 1.0), ("b1", 2.0), ("b2", 2.0), ("last", 9.0)]:
            loop.call_later(delay, fire, name)
        loop.call_later(0.5, fire, "cancelled").cancel()
        await done
        return fired

    # Equal deadlines keep their order; a cancelled timer neither fires nor stops time.
    assert run(main) == [("a", 1.0), ("b1", 2.0), ("b2", 2.0), ("c", 3.0), ("last", 9.0)]


def test_time_does_not_move_while_a_task_can_run() -> None:
    async def main() -> tuple[list[float], float]:
        loop = asyncio.get_running_loop()
        busy_times: list[float] = []

        async def busy() -> None:
            for _ in range(100):  # always runnable: the clock must wait for it
                busy_times.append(loop.time())
                await asyncio.sleep(0)

        async def sleeper() -> float:
            await asyncio.sleep(1.0)
            return loop.time()

        async with asyncio.TaskGroup() as group:
            woke = group.create_task(sleeper())
            group.create_task(busy())
        return busy_times, woke.result()

    busy_times, woke_at = run(main)
    assert busy_times == [0.0] * 100
    assert woke_at == 1.0


def test_a_ready_callback_is_never_skipped_over() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        order: list[tuple[str, float]] = []
        done = loop.create_future()

        def at_one() -> None:
            order.append(("timer", loop.time()))
            # Work made ready by a timer runs before the clock moves on to the next one.
            loop.call_soon(lambda: order.append(("soon after the timer", loop.time())))

        def at_two() -> None:
            order.append(("later", loop.time()))
            done.set_result(None)

        loop.call_later(2.0, at_two)
        loop.call_later(1.0, at_one)
        loop.call_soon(lambda: order.append(("soon", loop.time())))
        await done
        return order

    assert run(main) == [
        ("soon", 0.0),
        ("timer", 1.0),
        ("soon after the timer", 1.0),
        ("later", 2.0),
    ]


def test_ready_io_is_never_skipped_over() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        left, right = socket.socketpair()
        with left, right:
            readable: asyncio.Future[float] = loop.create_future()

            def on_readable() -> None:
                if not readable.done():
                    readable.set_result(loop.time())

            loop.add_reader(left, on_readable)
            right.send(b"ping")  # readable before the loop next looks
            loop.call_later(1.0, lambda: None)  # a timer the clock could jump to
            try:
                return await readable
            finally:
                loop.remove_reader(left)

    assert run(main) == 0.0


def test_with_no_timer_it_waits_for_real_work() -> None:
    # Nothing scheduled: only the worker thread can wake the loop, so the loop blocks
    # for real (as trio's MockClock does) instead of jumping or spinning.
    async def main() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, sum, [1, 2, 3])
        return result, loop.time()

    assert run(main) == (6, 0.0)


def test_wait_all_tasks_blocked_does_not_move_the_clock() -> None:
    async def main() -> tuple[list[str], float, float]:
        loop = asyncio.get_running_loop()
        steps: list[str] = []

        async def worker() -> None:
            for index in range(3):
                steps.append(f"step {index}")
                await asyncio.sleep(0)
            await asyncio.sleep(5.0)
            steps.append("woke")

        async with asyncio.TaskGroup() as group:
            group.create_task(worker())
            await wait_all_tasks_blocked()
            # Every step that could run has run; the worker's timer has not fired.
            blocked_at = loop.time()
            steps.append("all blocked")
        return steps, blocked_at, loop.time()

    steps, blocked_at, end = run(main)
    assert steps == ["step 0", "step 1", "step 2", "all blocked", "woke"]
    assert (blocked_at, end) == (0.0, 5.0)


def test_a_cancelled_wait_all_tasks_blocked_is_forgotten() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualClockEventLoop)
        waiter = asyncio.ensure_future(loop.wait_all_tasks_blocked())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await asyncio.sleep(2.0)  # with a stale waiter left behind, this would not jump
        return loop.time()

    assert run(main) == 2.0


def test_anyio_deadlines_are_exact() -> None:
    async def main() -> tuple[bool, float]:
        start = anyio.current_time()
        with anyio.move_on_after(30) as scope:
            await anyio.sleep_forever()
        return scope.cancelled_caught, anyio.current_time() - start

    options = {"loop_factory": VirtualClockEventLoop}
    assert anyio.run(main, backend="asyncio", backend_options=options) == (True, 30.0)


# --- the toolkit on asyncio ------------------------------------------------------------------


async def _hello(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hi " + scope["path"].encode()})


def test_open_test_server_runs_on_asyncio_in_virtual_time() -> None:
    async def main() -> None:
        assert isinstance(asyncio.get_running_loop(), VirtualClockEventLoop)
        async with open_test_server(
            _hello, lifespan="off", timeout_keep_alive=5.0, read_timeout=60.0
        ) as server:
            client = await server.connect()
            response = await client.request("GET", "/there")
            assert (response.status, response.body) == (200, b"hi /there")
            start = anyio.current_time()
            await client.expect_closed()  # the keep-alive timeout, in virtual seconds
            assert anyio.current_time() - start == 5.0
        # A read that gets nothing fails with the toolkit's error on asyncio too.
        async with open_test_server(_hello, lifespan="off", read_timeout=1.0) as server:
            quiet = await server.connect()
            await quiet.send(b"GET / HTTP/1.1\r\n")  # half a head: no answer yet
            start = anyio.current_time()
            with pytest.raises(trio.TooSlowError):
                await quiet.read_response()
            assert anyio.current_time() - start == 1.0

    anyio.run(main, backend="asyncio", backend_options={"loop_factory": VirtualClockEventLoop})
