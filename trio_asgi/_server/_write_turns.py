"""Fairness under write bursts: large writes take turns, a few beginning per pass.

Both loops run in passes: trio runs every task that became ready since its last
I/O check as one batch, asyncio every callback ready at the start of a loop
iteration. A fresh connection needs a few passes to be answered (the accept loop
takes it; its task reads the request, runs the app and writes), so its latency
is a few times the length of a pass. When hundreds of responses are streamed to
clients whose socket buffers still have room, every writer is ready in every
pass and each copies what it can into the kernel: up to 16 chunks of 64 KiB a
pass on the fast paths (which checkpoint every 16th operation that completes at
once), one on the generic transport. Measured with
400 clients that never read a 10 MiB response (``bench/burst_client.py``, a
busy 2-core machine): a fresh ``GET /`` waited 1.2-7 s on trio, 1.6-7 s on
asyncio (Uvicorn: 1.5-7.7 s).

So large writes (of at least :data:`BULK_WRITE` bytes) take turns: a turn lets
a connection write :data:`TURN_BYTES` without another checkpoint, at most
:data:`TURNS` turns begin per pass (one more with the one granted at once,
below), and the other writers wait in line (first
come, first served) without being scheduled at all: a pass stays short however
many responses are streamed. Waiting for the turn is the checkpoint those
writes would pay anyway (the fast paths checkpoint every 16 writes that complete
at once, i.e. every 1 MiB of 64 KiB chunks). The turn is passed on as soon as it is
taken, before the sends, so it is never held while waiting for a client to read:
a stalled client keeps nobody waiting. A write that had to wait for its client
ends its connection's turn (many clients that read can become writable in the
same pass). Small writes (a hello-world response, a WebSocket echo) never take a
turn.

A turn is granted at once, with no checkpoint, when none has begun since the
last pass began (the line then stays closed until the next pass: a callback the
loop runs then reopens it), so a lone large write does not wait a pass. A
writer checkpoints at least every second turn: its next turn, in the same pass,
waits in line.

The line is one per event-loop run (an anyio ``RunVar``), shared by every server
on that loop: the passes it keeps short are the loop's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeAlias

import anyio
import anyio.lowlevel
import trio

#: Writes of at least this many bytes take turns (a 10 KiB response does not).
BULK_WRITE = 32 * 1024
#: What one turn lets a connection write: the trio fast path's old checkpoint interval.
TURN_BYTES = 1024 * 1024
#: How many turns may begin in one pass: TURNS x TURN_BYTES is about the most that
#: the large writes of one pass copy, however many connections stream. One turn a
#: pass cost trio about a quarter of its stream_1m throughput (16 streams take
#: turns: 992 against 1,352 req/s without turns, bench A/B, 3 rounds); with four
#: the burst still answers a fresh request in tens of milliseconds (bench
#: burst_fairness: 40 ms on trio).
TURNS = 4

#: This loop's line, and how to run a callback at the start of its next pass.
_Line: TypeAlias = tuple[anyio.Semaphore, Callable[[Callable[[], None]], object]]
_line: anyio.lowlevel.RunVar[_Line] = anyio.lowlevel.RunVar("trio_asgi_write_turns")


def _this_loops_line() -> _Line:
    try:
        return _line.get()
    except LookupError:
        pass
    try:
        soon: Callable[[Callable[[], None]], object] = asyncio.get_running_loop().call_soon
    except RuntimeError:  # not asyncio: trio
        soon = trio.lowlevel.current_trio_token().run_sync_soon
    line = (anyio.Semaphore(TURNS), soon)
    _line.set(line)
    return line


async def take_turn() -> None:
    """Wait in line until this connection's turn, if a turn already began this pass.

    The caller writes right after, before its next ``await``. The first turn of a
    pass is granted at once, with no checkpoint (a lone large write does not wait a
    pass), and the line is closed until the next pass begins; a later one waits in
    line, is let through in a later pass, and passes the turn on at once.
    """
    turns, soon = _this_loops_line()
    if turns.value and not turns.statistics().tasks_waiting:
        turns.acquire_nowait()
        soon(turns.release)
        return
    await turns.acquire()
    turns.release()


async def spend_turn(budget: int, size: int) -> int:
    """What is left of a connection's turn after a large write of ``size`` bytes.

    Takes a new turn first (waiting in line) when ``budget``, what the last one
    left, is used up. Callers keep the result, and set it to 0 after a write
    that waited for the client.
    """
    if budget <= 0:
        await take_turn()
        budget = TURN_BYTES
    return budget - size
