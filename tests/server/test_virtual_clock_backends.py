"""The ``virtual_clock`` fixture: each in-memory test runs on its backend, in virtual time.

The memory modules (``test_deadlines`` and the others that use ``virtual_clock``) check
times to the virtual second; this checks that the clock they run on is virtual on both
backends, so that those checks mean what they say.
"""

from __future__ import annotations

import asyncio
import time

import anyio
import anyio.lowlevel
import pytest
import sniffio
import trio
import trio.testing

from trio_asgi.testing._virtual_clock import VirtualClockEventLoop, wait_all_tasks_blocked

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("virtual_clock")]


async def test_each_param_runs_on_its_backend_with_a_virtual_clock(
    anyio_backend: tuple[str, object],
) -> None:
    backend, _ = anyio_backend
    assert sniffio.current_async_library() == backend
    if backend == "trio":
        assert isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock)
    else:
        assert isinstance(asyncio.get_running_loop(), VirtualClockEventLoop)


async def test_an_hour_passes_at_once_and_exactly() -> None:
    started, real_start = anyio.current_time(), time.monotonic()
    await anyio.sleep(3600)
    assert anyio.current_time() - started == 3600
    assert time.monotonic() - real_start < 5


async def test_waiting_for_blocked_tasks_takes_no_virtual_time() -> None:
    steps: list[float] = []

    async def worker() -> None:
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        steps.append(anyio.current_time())
        await anyio.sleep(1.0)

    async with anyio.create_task_group() as group:
        started = anyio.current_time()
        group.start_soon(worker)
        await wait_all_tasks_blocked()
        assert steps == [started]
        assert anyio.current_time() == started
