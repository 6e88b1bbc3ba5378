"""The write-turn line itself (``_server/_write_turns.py``), on trio, asyncio and uvloop.

``test_write_fairness.py`` checks what the turns are for, over real sockets. These
check what they cost: a turn begun while the pass's budget is not spent is no
checkpoint at all (it completes inside an already cancelled scope, where any
checkpoint raises); such a turn is a small one (:data:`SMALL_TURN`), so
:data:`CROWD` of them begin in a pass (sixteen 1 MiB echoes, or sixteen streams'
64 KiB chunks) and only the writer past them waits; a turn won in line is a whole
one; and the waiters go through in the order they came, a cancelled one skipped:
:data:`TURNS` a pass while they are a crowd, all at once when they are no more
than :data:`CROWD`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from trio_asgi._server._write_turns import (
    CROWD,
    SMALL_TURN,
    TURN_BYTES,
    TURNS,
    _Line,
    _Waiter,
    spend_turn,
    take_turn,
)

pytestmark = pytest.mark.anyio

TIMEOUT = 10


@pytest.fixture(params=["trio", "asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> str | tuple[str, dict[str, Any]]:
    if request.param == "uvloop":
        return ("asyncio", {"use_uvloop": True})
    return str(request.param)


async def turns_without_a_checkpoint() -> int:
    """How many turns in a row begin at once (inside a cancelled scope: no checkpoint)."""
    begun = 0
    with anyio.CancelScope() as scope:
        scope.cancel()
        for _ in range(CROWD + 1):
            assert await take_turn() == SMALL_TURN  # raises Cancelled if it checkpoints
            begun += 1
    return begun


async def test_a_pass_lets_a_crowd_of_large_writes_go_at_once_and_the_next_one_waits() -> None:
    """Sixteen 1 MiB echoes that are ready in one pass all go (each send copies what
    the socket has room for): charged a whole 1 MiB turn each, twelve waited a pass."""
    with anyio.fail_after(TIMEOUT):
        await anyio.lowlevel.checkpoint()  # a pass of its own
        assert await turns_without_a_checkpoint() == CROWD
        # The line is not stuck: a later pass has its budget again.
        await anyio.wait_all_tasks_blocked()  # the loop ran its callbacks: a new pass
        assert await turns_without_a_checkpoint() == CROWD


async def test_a_small_turn_lets_a_stream_write_its_next_chunks_without_the_line() -> None:
    """A stream of 64 KiB chunks to a client that reads asks the line once per
    SMALL_TURN, not once a chunk (each ask is a lookup of the loop's line)."""
    chunk = 64 * 1024
    callbacks: list[Callable[[], None]] = []
    line = _Line(callbacks.append)
    with anyio.fail_after(TIMEOUT):
        await anyio.lowlevel.checkpoint()  # a pass of its own
        budget = await spend_turn(0, chunk)
        assert budget == SMALL_TURN - chunk
        for _ in range(SMALL_TURN // chunk - 1):
            budget = await spend_turn(budget, chunk)
        assert budget == 0  # the next chunk asks the line again
    for _ in range(CROWD):
        assert line.try_now()
    assert not line.try_now()  # the pass's budget is spent: in line


async def test_a_turn_won_in_line_is_a_whole_turn() -> None:
    callbacks: list[Callable[[], None]] = []
    line = _Line(callbacks.append)
    for _ in range(CROWD):
        assert line.try_now()
    assert not line.try_now()  # the pass is spent
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as group:
            group.start_soon(_Waiter().wait, line)
            await anyio.wait_all_tasks_blocked()
            callbacks.pop()()  # the next pass lets it through, charged a turn
    assert line.spent == TURN_BYTES
    assert line.began == 1


async def test_waiters_go_through_in_order_a_pass_at_a_time_skipping_the_cancelled() -> None:
    """On a line whose passes the test begins itself (its callbacks run when told)."""
    callbacks: list[Callable[[], None]] = []
    line = _Line(callbacks.append)
    for _ in range(CROWD):
        assert line.try_now()
    assert not line.try_now()  # this pass's budget is spent
    order: list[int] = []
    writers = CROWD + 2 * TURNS

    async def writer(number: int, scope: anyio.CancelScope) -> None:
        with scope:
            await _Waiter().wait(line)
            order.append(number)

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as group:
            scopes = [anyio.CancelScope() for _ in range(writers)]
            for number, scope in enumerate(scopes):
                group.start_soon(writer, number, scope)
                await anyio.wait_all_tasks_blocked()  # in line, in this order
            scopes[1].cancel()  # stops waiting: its place is no turn lost
            await anyio.wait_all_tasks_blocked()
            assert order == []
            through = [number for number in range(writers) if number != 1]
            # A crowd goes TURNS a pass; once the line is no crowd, all of it at once.
            for went in (TURNS, 2 * TURNS, len(through)):
                assert len(callbacks) == 1  # one callback a pass
                callbacks.pop()()  # the next pass begins
                await anyio.wait_all_tasks_blocked()
                # The first in line go through (in any order: trio shuffles a batch).
                assert sorted(order) == through[:went]
