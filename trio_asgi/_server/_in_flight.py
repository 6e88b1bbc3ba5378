"""The in-flight sweep: one task per server looks after running requests, not one each.

Two things about a request in progress cannot wait for its app's next move, and a
watcher task (or timer) per request would cost every request a task spawn and
scheduler trips on the hot path. So one task per server, :func:`sweep_in_flight`,
looks at every connection each :data:`CHECK_INTERVAL` seconds, for:

Clients that left while their app computes.
    A client that disconnects (FIN or reset) while its app works without calling
    ``receive()`` used to leave our socket in CLOSE_WAIT until the app returned:
    nobody was reading, so nobody saw the end, and reading to find out would take
    body bytes the app has not asked for. The sweep peeks at the socket of each
    connection whose app runs with the request body fully read (``MSG_PEEK``:
    nothing is taken; bytes waiting, say a pipelined request, mean "cannot tell"
    and are left alone). A client that has gone is marked gone and our end is
    closed: the app's next ``receive()`` returns ``http.disconnect`` and its next
    ``send()`` raises :class:`~trio_asgi.ClientDisconnected`.

Response heads held too long.
    An HTTP/1.1 response head waits for the app's first body message, to go out
    in one write with it (``_http11_stream``); ``receive()`` releases it too. A
    stream that never calls ``receive()`` and whose first event comes late (an
    SSE endpoint) would show its client nothing, and a client with a header
    timeout (httpx: 5 s) would give up on a quiet stream. Each tick the sweep marks
    the heads held at that moment, waits :data:`MIN_HOLD`, and writes the marked
    heads still held (a response that finished, or a next response, is not
    touched: the mark belongs to one hold). A head is so held for at most about
    ``CHECK_INTERVAL + MIN_HOLD`` seconds, and a response that completes within
    ``MIN_HOLD`` is never split. A head stays held while the app waits in
    ``receive()`` for body bytes the client has not sent yet: the client is still
    sending, and a body that stalls then still gets a whole ``408``. The writes take
    turns with the connection's own (never two writers on a transport; a connection
    writing now is left to the next tick) and run side by side, each bounded by
    :data:`HEAD_WRITE_TIMEOUT`: a client that does not read is cut off per the
    transport's write contract (broken; the app's next ``send()`` raises), and
    never holds up the sweep.
    HTTP/2 holds nothing: its HEADERS go to the connection's writer at once.

Neither costs a request a task, a timer or a clock reading: a response head costs
one attribute store (its mark cleared), a body read that waits two (the app waits).
"""

from __future__ import annotations

from typing import Final

import anyio

from ._state import ServedConnection, ServerState

#: How often in-flight requests are looked at.
CHECK_INTERVAL: Final = 1.0
#: A head is written by the sweep only once held at least this long.
MIN_HOLD: Final = 0.1
#: The most a write of a released head may wait for its client to read.
HEAD_WRITE_TIMEOUT: Final = 0.5


async def sweep_in_flight(state: ServerState, interval: float = CHECK_INTERVAL) -> None:
    """Until cancelled: close the connections whose client left while the app computes,
    and write the response heads held back for longer than :data:`MIN_HOLD`."""
    tick = anyio.current_time()
    mark = 0
    while True:
        tick += interval
        await anyio.sleep_until(tick)
        departed = [c for c in state.connections if c.client_departed()]
        for connection in departed:
            await connection.close_departed()
        mark += 1
        held = [c for c in state.connections if c.mark_held_head(mark)]
        if held:
            await anyio.sleep(MIN_HOLD)
            await _release_heads(held, mark, _head_write_timeout(state))


async def _release_heads(held: list[ServedConnection], mark: int, timeout: float) -> None:  # noqa: ASYNC109
    """Write the heads still held since they were marked, side by side."""
    async with anyio.create_task_group() as group:
        for connection in held:
            group.start_soon(connection.release_held_head, mark, timeout)


def _head_write_timeout(state: ServerState) -> float:
    configured = state.config.timeout_write
    if configured is None:
        return HEAD_WRITE_TIMEOUT
    return min(configured, HEAD_WRITE_TIMEOUT)
