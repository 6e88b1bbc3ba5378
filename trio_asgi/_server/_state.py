"""What every connection of one server shares: the app, the config, counters and shutdown."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from .._config import Config
from .._logging import AccessLog
from .._metrics import Metrics, ServerStatistics
from .._protocol._http11 import Limits
from .._protocol._response import DefaultHeaders
from .._types import ASGIApp

logger = logging.getLogger("trio_asgi")


__all__ = ["Drainable", "ServerState", "ServerStatistics"]


class Drainable(Protocol):
    """A connection that can be asked to finish up for a graceful shutdown."""

    def begin_shutdown(self) -> None:
        """Close now if idle; otherwise finish the current exchange, then close."""


class ServerState:
    """Shared by all connections of one server; lives as long as :func:`serve`."""

    __slots__ = (
        "access_log",
        "app",
        "config",
        "connections",
        "defaults",
        "lifespan_state",
        "limits",
        "metrics",
        "open_connections",
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
        self.metrics = Metrics(histograms=config.metrics_bind is not None)
        #: The lifespan ``state``: every request's scope gets a shallow copy.
        self.lifespan_state: dict[str, Any] = {}
        #: Connections that can be drained; idle ones are closed at once on shutdown.
        self.connections: set[Drainable] = set()
        self.open_connections = 0
        self.requests_in_flight = 0
        self.requests_served = 0
        self.shutting_down = False

    def at_capacity(self) -> bool:
        limit = self.config.limit_concurrency
        return limit is not None and self.requests_in_flight >= limit

    def begin_shutdown(self) -> None:
        self.shutting_down = True
        for connection in list(self.connections):
            connection.begin_shutdown()

    def statistics(self) -> ServerStatistics:
        return self.metrics.statistics(
            open_connections=self.open_connections,
            requests_in_flight=self.requests_in_flight,
            requests_served=self.requests_served,
        )
