"""What every connection of one server shares: the app, the config, counters and shutdown."""

from __future__ import annotations

import logging
import math
from typing import Any, Protocol

import anyio

from .._config import Config
from .._logging import AccessLog
from .._metrics import ServerStatistics, new_metrics
from .._protocol._http11 import Limits
from .._protocol._response import DefaultHeaders
from .._types import ASGIApp
from ._rejections import RejectionLog

logger = logging.getLogger("trio_asgi")


__all__ = ["Drainable", "ServedConnection", "ServerState", "ServerStatistics"]


class Drainable(Protocol):
    """A connection that can be asked to finish up for a graceful shutdown."""

    def begin_shutdown(self) -> None:
        """Close now if idle; otherwise finish the current exchange, then close."""


class ServedConnection(Drainable, Protocol):
    """A connection of the server: drainable, and looked after by the in-flight sweep."""

    def client_departed(self) -> bool:
        """Whether an app computes for a client that has gone; if so, the app is told."""

    async def close_departed(self) -> None:
        """Close our end after :meth:`client_departed` (never waits on the client)."""

    def mark_held_head(self, mark: int) -> bool:
        """Whether a response head is held back for the app's first body; if so, mark it."""

    async def release_held_head(self, mark: int, timeout: float) -> None:  # noqa: ASYNC109
        """Write the head held since it was marked ``mark``, within ``timeout``."""


class ServerState:
    """Shared by all connections of one server; lives as long as :func:`serve`."""

    __slots__ = (
        "access_log",
        "app",
        "config",
        "connections",
        "defaults",
        "grace_deadline",
        "lifespan_state",
        "limits",
        "metrics",
        "open_connections",
        "rejections",
        "requests_in_flight",
        "requests_served",
        "shutting_down",
    )

    def __init__(self, app: ASGIApp, config: Config) -> None:
        self.app = app
        self.config = config
        self.limits = Limits(
            max_header_size=config.max_header_size,
            max_header_count=config.max_header_count,
            max_target_length=config.max_target_length,
        )
        self.defaults = DefaultHeaders(
            server_header=config.server_header, date_header=config.date_header, extra=config.headers
        )
        self.access_log = AccessLog(config)
        #: Warnings about requests refused as malformed, rate-limited per address.
        self.rejections = RejectionLog()
        self.metrics = new_metrics(histograms=config.metrics_bind is not None)
        #: The lifespan ``state``: every request's scope gets a shallow copy.
        self.lifespan_state: dict[str, Any] = {}
        #: Connections that can be drained; idle ones are closed at once on shutdown.
        self.connections: set[ServedConnection] = set()
        self.open_connections = 0
        self.requests_in_flight = 0
        self.requests_served = 0
        self.shutting_down = False
        #: When a graceful shutdown's grace period ends (anyio time; inf: none running).
        self.grace_deadline = math.inf

    def at_capacity(self) -> bool:
        limit = self.config.limit_concurrency
        return limit is not None and self.requests_in_flight >= limit

    def begin_shutdown(self) -> None:
        self.shutting_down = True
        grace = self.config.timeout_graceful_shutdown
        if grace is not None:
            self.grace_deadline = anyio.current_time() + grace
        for connection in list(self.connections):
            connection.begin_shutdown()

    def grace_period_over(self) -> bool:
        """Whether a graceful shutdown's grace period has run out (its requests are cancelled)."""
        return anyio.current_time() >= self.grace_deadline

    def statistics(self) -> ServerStatistics:
        return self.metrics.statistics(
            open_connections=self.open_connections,
            requests_in_flight=self.requests_in_flight,
            requests_served=self.requests_served,
        )
