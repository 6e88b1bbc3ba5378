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
:data:`TURNS` turns begin per pass, and the other writers wait in line (first
come, first served) without being scheduled at all: a pass stays short however
many responses are streamed. Waiting for the turn is the checkpoint those
writes would pay anyway (the fast paths checkpoint every 16 writes that complete
at once, i.e. every 1 MiB of 64 KiB chunks). A turn is not held: nothing is
handed back after the sends, so a stalled client keeps nobody waiting. A write
that had to wait for its client ends its connection's turn (many clients that
read can become writable in the same pass). Small writes (a hello-world
response, a WebSocket echo) never take a turn.

What a turn costs is kept to nothing while a pass's large writes stay within
:data:`PASS_BYTES`: a turn then begins at once, with no checkpoint and nothing to
wait on. Such a turn is a small one, :data:`SMALL_TURN` bytes, and it is what the
pass is charged, so :data:`CROWD` of them begin in a pass: one send() copies no
more than the socket's buffer has room for, whatever its size, so sixteen 1 MiB
echoes ready in one pass all go, as do sixteen streams whose clients read (each a
64 KiB chunk, then a wait for the client). Charged a whole 1 MiB turn each, four
began a pass and the other twelve waited for the next: a scheduler trip more a
request and about a fifth more server CPU on the bench's ``echo_1m`` (A/B of six
rounds). The count goes back to zero in a callback at the start of the next
pass, which the pass's first turn schedules (one per pass, not one per turn).
Only a writer that finds the pass's bytes spent, or others already waiting,
waits in line; that same callback lets the first :data:`TURNS` waiters through,
each with a whole turn (they do not relay a token from one to the next, a pass
each).

The line is one per event-loop run (an anyio ``RunVar``), shared by every server
on that loop: the passes it keeps short are the loop's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

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
#: A line of at most this many writers goes through in one pass (see _Line): a few
#: streams to clients that read (bench stream_1m: 16) write as they would without
#: turns; a burst of hundreds is a crowd.
CROWD = 16
#: The large writes that may begin at once in one pass, in bytes: what TURNS turns let
#: a crowd write in a pass.
PASS_BYTES = TURNS * TURN_BYTES
#: A turn begun at once (not won in line) lets a connection write this much, and is
#: what the pass is charged for it: so CROWD of them begin in a pass.
SMALL_TURN = PASS_BYTES // CROWD


class _Line:
    """One loop's line: the bytes of large writes charged this pass, and the writers
    waiting for a turn.

    A pass's budget is counted, not lent and handed back: a small turn begins at once
    when the pass has charged less than :data:`PASS_BYTES` and nobody waits (no
    checkpoint, no waiting), and the count is reset by one callback at the start of
    the next pass, scheduled by the pass's first charge. That callback also lets the
    first :data:`TURNS` writers in line through, each with a turn of
    :data:`TURN_BYTES` charged to that pass, in the same pass: a writer that waited
    does not hand anything on. So while the large writes of a pass stay within its
    budget (a few streams), one costs a counter and, once a pass, a callback; only
    when more want to write do writers wait, in line.
    """

    __slots__ = ("_soon", "began", "scheduled", "spent", "waiting")

    def __init__(self, soon: Callable[[Callable[[], None]], object]) -> None:
        self._soon = soon
        #: Turns granted to writers in line this pass.
        self.began = 0
        #: Bytes charged this pass: the small turns begun at once, the turns granted.
        self.spent = 0
        #: The callback that starts the next pass is scheduled.
        self.scheduled = False
        #: The writers waiting, first come first served: each wakes with its turn.
        self.waiting: deque[_Waiter] = deque()

    def try_now(self) -> bool:
        """Begin a small turn, charged to this pass, if its budget is not spent and
        nobody waits; False if the writer must wait in line."""
        if self.waiting or self.spent >= PASS_BYTES:
            return False
        self._charge(SMALL_TURN)
        return True

    def _begin(self) -> None:
        self.began += 1
        self._charge(TURN_BYTES)

    def _charge(self, size: int) -> None:
        self.spent += size
        if not self.scheduled:
            self.scheduled = True
            self._soon(self._next_pass)

    def _next_pass(self) -> None:
        self.scheduled = False
        self.began = self.spent = 0
        waiting = self.waiting
        # A short line goes through whole: that pass is no longer than a pass of the
        # fast paths without turns (CROWD writers, 16 writes each), and a few
        # streams never wait more than a pass. A crowd goes TURNS a pass.
        allowed = len(waiting) if len(waiting) <= CROWD else TURNS
        while waiting and self.began < allowed:
            if waiting.popleft().grant():
                self._begin()


class _Waiter:
    """A writer waiting in line, on trio or on asyncio."""

    __slots__ = ("_future", "_task")

    def __init__(self) -> None:
        self._task: trio.lowlevel.Task | None = None
        self._future: asyncio.Future[None] | None = None

    def grant(self) -> bool:
        """Wake the writer with its turn; False if it stopped waiting (cancelled)."""
        if self._task is not None:
            trio.lowlevel.reschedule(self._task)
            self._task = None
            return True
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)
            return True
        return False

    async def wait(self, line: _Line) -> None:
        line.waiting.append(self)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # trio
            await self._wait_trio(line)
            return
        self._future = loop.create_future()
        try:
            await self._future
        except BaseException:
            if not self._future.done():
                self._future.cancel()  # grant() skips it
            raise

    async def _wait_trio(self, line: _Line) -> None:
        self._task = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            self._task = None  # grant() skips it
            line.waiting.remove(self)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)


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
    line = _Line(soon)
    _line.set(line)
    return line


async def take_turn() -> int:
    """Begin a turn, and return what it lets the caller write: a small turn at once if
    the pass's budget is not spent and nobody waits, else a whole turn won in line
    (in a later pass).

    The caller writes right after, before its next ``await``. A turn begun at once
    costs no checkpoint (a lone large write does not wait a pass).
    """
    line = _this_loops_line()
    if line.try_now():
        return SMALL_TURN
    await _Waiter().wait(line)
    return TURN_BYTES


async def spend_turn(budget: int, size: int) -> int:
    """What is left of a connection's turn after a large write of ``size`` bytes.

    Takes a new turn first (at once or in line) when ``budget``, what the last one
    left, is used up. Callers keep the result, and set it to 0 after a write that
    waited for the client.
    """
    if budget <= 0:
        budget = await take_turn()
    return budget - size
