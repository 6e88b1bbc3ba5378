"""Noticing clients that left while their app computes, without a task per request.

A client that disconnects (FIN or reset) while its app works without calling
``receive()`` used to leave our socket in CLOSE_WAIT until the app returned: nobody
was reading, so nobody saw the end. Reading to find out would take body bytes the
app has not asked for, and a watcher task per request would cost every request a
task spawn and scheduler trips on the hot path.

So one task per server, :func:`watch_departures`, looks every
:data:`CHECK_INTERVAL` seconds at the connections whose app is running with the
request body fully read, and peeks at each one's socket (``MSG_PEEK``: nothing is
taken; bytes waiting, say a pipelined request, mean "cannot tell" and are left
alone). A client that has gone is marked gone and our end is closed: the app's next
``receive()`` returns ``http.disconnect`` and its next ``send()`` raises
:class:`~trio_asgi.ClientDisconnected`. Within ``CHECK_INTERVAL`` seconds of the
client leaving, and at no cost to a request that finishes sooner.
"""

from __future__ import annotations

from typing import Final

import anyio

from ._state import ServerState

#: How often in-flight requests are checked for a client that left.
CHECK_INTERVAL: Final = 1.0


async def watch_departures(state: ServerState, interval: float = CHECK_INTERVAL) -> None:
    """Until cancelled: close the connections whose client left while the app computes."""
    while True:
        await anyio.sleep(interval)
        departed = [c for c in state.connections if c.client_departed()]
        for connection in departed:
            await connection.close_departed()
