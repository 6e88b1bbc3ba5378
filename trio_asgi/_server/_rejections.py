"""One warning line for a request we refuse as malformed, rate-limited per client address.

A malformed request is answered (400, 414, 431, 505...) and the connection
closed; without a log line an operator cannot tell a misbehaving client or a
proxy mangling requests from silence. But anyone can send garbage, so the line
must not become a way to fill the log: at most one line per client address per
:data:`INTERVAL` seconds (later rejections are counted and reported with the
next line), and the table that remembers addresses is bounded. The line says
the status and its class (the reason phrase, and where the request broke),
never the client's bytes: the detail stays at debug level.
"""

from __future__ import annotations

import http
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

logger = logging.getLogger("trio_asgi")

#: At most one warning per client address in this many seconds.
INTERVAL: Final = 10.0
#: Addresses remembered at most; the least recently warned about is forgotten first.
MAX_ADDRESSES: Final = 4096


class RejectionLog:
    """Warns once per address and interval about requests refused as malformed."""

    __slots__ = ("_clock", "_last")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        #: host -> (when we last warned, rejections since, unreported)
        self._last: OrderedDict[str, list[float]] = OrderedDict()

    def rejected(self, client: tuple[str, int] | None, status: int, where: str) -> None:
        """Note that a request from ``client`` was refused with ``status``; maybe warn.

        Args:
            client: The client's address (None when unknown: all such share one entry).
            status: The status we answered.
            where: What broke, as a fixed phrase (``"request head"``, ``"request body"``,
                ``"WebSocket handshake"``), never the client's bytes.
        """
        host = client[0] if client is not None else "unknown"
        now = self._clock()
        entry = self._last.get(host)
        if entry is not None and now - entry[0] < INTERVAL:
            entry[1] += 1
            return
        suppressed = int(entry[1]) if entry is not None else 0
        self._last[host] = [now, 0.0]
        self._last.move_to_end(host)
        while len(self._last) > MAX_ADDRESSES:
            self._last.popitem(last=False)
        logger.warning(
            "Rejected a bad %s from %s: %d %s%s",
            where,
            host,
            status,
            _phrase(status),
            f" ({suppressed} more from this address since the last warning)" if suppressed else "",
        )


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"
