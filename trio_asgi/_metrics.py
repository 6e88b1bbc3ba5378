"""A server's figures: counted on the hot path as plain ints, read as typed snapshots.

One :class:`Metrics` per server, written only from the event loop's thread (no
locks). The per-request cost is one call, ``Metrics.request_done``: a list
increment found by one dict subscript and two additions, plus, when the Prometheus
listener is on (``Config.metrics_bind``), a ``bisect`` and an increment for each of
the two histograms and one float addition, and nothing else. Which of the two
recorders runs is chosen once, when the server starts (:class:`Metrics` or
:class:`ObservingMetrics`), not tested per request. Why not ``prometheus-client``:
its record calls take a lock each and cost several microseconds per request
(``bench/metrics_cost.py`` measures both; the bar is 1 µs).

Everything else (connections, timeouts, protocol errors, WebSocket events, the
lifespan state) is counted where it happens, off the per-request path.

:meth:`Metrics.statistics` makes the frozen :class:`ServerStatistics` that
:meth:`Server.statistics <trio_asgi.Server.statistics>` returns; the Prometheus
text is rendered from it (:mod:`trio_asgi._metrics_text`), so both always agree.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

#: Request methods counted under their own name; any other is ``OTHER`` (label cardinality).
KNOWN_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE")
)
#: Request duration histogram bounds, in seconds.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Response size histogram bounds, in bytes.
SIZE_BUCKETS = (64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)
#: The lifespan states :attr:`Metrics.lifespan` takes.
LIFESPAN_STATES = ("off", "starting", "started", "unsupported", "failed", "stopping", "stopped")
_STATUS_CLASSES = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """Observations per bucket: ``counts[i]`` fell at or under ``bounds[i]`` (not cumulative);
    the last count is above every bound."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    sum: float

    @property
    def count(self) -> int:
        return sum(self.counts)


def _empty_counts() -> dict[str, int]:
    return {}


@dataclass(frozen=True, slots=True)
class ServerStatistics:
    """A snapshot of a server's activity, from :meth:`Server.statistics`.

    The first three fields are the short summary (they make the ``repr`` and ``==``).
    The rest are the figures the Prometheus metrics show (see the metrics reference);
    they are left out of ``repr`` and ``==`` to keep both readable and stable.
    """

    #: Connections accepted and not yet closed.
    open_connections: int
    #: HTTP requests whose app call has not returned, plus open WebSocket sessions.
    requests_in_flight: int
    #: HTTP requests and WebSocket sessions finished since the server started.
    requests_served: int
    #: The process these figures are from (the ``pid`` label of every metric).
    pid: int = field(default=0, repr=False, compare=False)
    #: Connections accepted since the server started.
    connections_opened: int = field(default=0, repr=False, compare=False)
    #: Connections closed, by reason (``client_close``, ``keep_alive_timeout``, ...).
    connections_closed: dict[str, int] = field(
        default_factory=_empty_counts, repr=False, compare=False
    )
    #: Finished HTTP requests by ``(method, status class)``, e.g. ``("GET", "2xx")``.
    requests: dict[tuple[str, str], int] = field(default_factory=dict, repr=False, compare=False)
    #: Request body bytes received, and response bytes (head and body) sent.
    bytes_received: int = field(default=0, repr=False, compare=False)
    bytes_sent: int = field(default=0, repr=False, compare=False)
    #: WebSocket sessions accepted, and of those, still open.
    websocket_sessions: int = field(default=0, repr=False, compare=False)
    websocket_sessions_open: int = field(default=0, repr=False, compare=False)
    #: WebSocket sessions ended, by close code.
    websocket_closes: dict[int, int] = field(default_factory=dict, repr=False, compare=False)
    #: WebSocket handshakes answered with an HTTP status instead of 101, by status.
    websocket_rejects: dict[int, int] = field(default_factory=dict, repr=False, compare=False)
    #: Requests refused as malformed or too large, by the 4xx status they got.
    protocol_errors: dict[int, int] = field(default_factory=dict, repr=False, compare=False)
    #: Deadlines that passed, by kind (``keep_alive``, ``request_head``, ``body``, ...).
    timeouts: dict[str, int] = field(default_factory=_empty_counts, repr=False, compare=False)
    #: One of :data:`LIFESPAN_STATES`.
    lifespan: str = field(default="off", repr=False, compare=False)
    #: Request durations and response sizes; ``None`` unless metrics are on.
    request_duration: HistogramSnapshot | None = field(default=None, repr=False, compare=False)
    response_size: HistogramSnapshot | None = field(default=None, repr=False, compare=False)


class _CountsByMethod(dict[str, list[int]]):
    """Counts per status class by method; any other method reads as ``OTHER``'s counts.

    ``counts[method]`` is one subscript on the hot path (``__missing__`` runs only for
    the rare other method, and adds no key: a client must not grow our label set).
    """

    __slots__ = ("other",)

    def __init__(self) -> None:
        super().__init__((method, [0] * 6) for method in KNOWN_METHODS)
        self.other = self["OTHER"] = [0] * 6

    def __missing__(self, method: str) -> list[int]:
        return self.other


class CloseRecord(Protocol):
    """Where a connection's close reason is written when a deadline or an error decides it.

    The connection itself, or what serves a request on it (an HTTP/1.1 stream, a
    WebSocket session), given the connection's record: the hooks need no connection.
    """

    close_reason: str | None


class WriteDeadlines(Protocol):
    """A connection's transport, as :func:`close_reason` reads it."""

    #: A write broke it by making no progress within ``timeout_write``.
    @property
    def write_timed_out(self) -> bool: ...


class Closing(Protocol):
    """A closed connection, as :func:`close_reason` reads it."""

    @property
    def close_reason(self) -> str | None: ...

    @property
    def transport(self) -> WriteDeadlines: ...

    #: True when the server decided to close it (shutdown, request limit).
    @property
    def closing(self) -> bool: ...

    #: What it was upgraded to, if anything: a WebSocket session (whose class says
    #: ``ends_connection_as = "websocket"``) or HTTP/2 (whose streams are requests like
    #: HTTP/1.1's, so its connection closes for the same reasons).
    @property
    def upgraded(self) -> object: ...


def close_reason(conn: Closing | None, *, shutting_down: bool) -> str:
    """Why a connection closed, most specific first.

    ``*_timeout`` and ``protocol_error`` as recorded when they happened;
    ``write_timeout`` when a write to it stalled past ``timeout_write`` (the client
    stopped reading: the transport says so, whichever write it was); ``error``
    when serving it raised (a server bug, a failed TLS handshake); ``shutdown``
    during a graceful shutdown; ``websocket`` after a WebSocket session (its close
    code is counted apart; an HTTP/2 connection is not one: it goes on to the reasons
    below); ``server_close`` when we chose to close (request
    limit); else ``client_close`` (the client closed, asked to with
    ``Connection: close``, or went away mid-response).
    """
    if conn is None:
        return "error"
    if conn.close_reason is not None:
        return conn.close_reason
    if conn.transport.write_timed_out:
        return "write_timeout"
    if shutting_down:
        return "shutdown"
    upgraded_reason: str | None = getattr(conn.upgraded, "ends_connection_as", None)
    if upgraded_reason is not None:
        return upgraded_reason
    if conn.closing:
        return "server_close"
    return "client_close"


def new_metrics(*, histograms: bool) -> Metrics:
    """The counters of a new server: with request duration and size histograms when
    metrics are served (``Config.metrics_bind``), else without them."""
    return ObservingMetrics() if histograms else Metrics()


class Metrics:
    """The counters of one server; see the module docstring.

    Without histograms; :class:`ObservingMetrics` keeps them too. Which class a server
    has is chosen once (:func:`new_metrics`), so the per-request recorder tests nothing.
    """

    #: Whether request durations and response sizes are observed.
    histograms: ClassVar[bool] = False

    __slots__ = (
        "bytes_received",
        "bytes_sent",
        "closed",
        "duration_counts",
        "duration_sum",
        "lifespan",
        "opened",
        "protocol_errors",
        "requests",
        "size_counts",
        "timeouts",
        "ws_closes",
        "ws_rejects",
        "ws_sessions",
    )

    def __init__(self) -> None:
        #: Finished requests per method: a count per status class (index: status // 100).
        self.requests = _CountsByMethod()
        self.bytes_received = 0
        self.bytes_sent = 0
        #: Histogram counts per bucket (not cumulative; the last is above every bound),
        #: kept by ObservingMetrics only. The size histogram's sum is bytes_sent.
        self.duration_counts = [0] * (len(DURATION_BUCKETS) + 1)
        self.duration_sum = 0.0
        self.size_counts = [0] * (len(SIZE_BUCKETS) + 1)
        self.opened = 0
        self.closed: dict[str, int] = {}
        self.protocol_errors: dict[int, int] = {}
        self.timeouts: dict[str, int] = {}
        self.ws_sessions = 0
        self.ws_closes: dict[int, int] = {}
        self.ws_rejects: dict[int, int] = {}
        #: One of :data:`LIFESPAN_STATES`; set by ``Server.serve``.
        self.lifespan = "off"

    # --- the hot path: once per HTTP request ------------------------------------------------

    def request_done(
        self, method: str, status: int, duration: float, received: int, sent: int
    ) -> None:
        """One finished HTTP request (``status`` 0: no response was sent; else 100-599)."""
        self.requests[method][status // 100] += 1  # any other method: OTHER
        self.bytes_received += received
        self.bytes_sent += sent

    # --- connections ------------------------------------------------------------------------

    def connection_opened(self) -> None:
        self.opened += 1

    def connection_closed(self, conn: Closing | None, *, shutting_down: bool) -> None:
        """Count a closed connection under its reason (see :func:`close_reason`).

        A write that stalled past ``timeout_write`` is counted as a ``write`` timeout
        here, once a connection, from its transport: every write path (bodies, files,
        error replies, WebSocket frames, the HTTP/2 writer) sets the same flag.
        """
        reason = close_reason(conn, shutting_down=shutting_down)
        self.closed[reason] = self.closed.get(reason, 0) + 1
        if conn is not None and conn.transport.write_timed_out:
            self.count_timeout("write")

    def timed_out(self, record: CloseRecord | None, kind: str) -> None:
        """A deadline of kind ``kind`` passed; the connection closes because of it."""
        self.timeouts[kind] = self.timeouts.get(kind, 0) + 1
        if record is not None:
            record.close_reason = f"{kind}_timeout"

    def idle_ended(self, record: CloseRecord, *, closing: bool, first: bool) -> None:
        """The wait for a request ended without one: a timeout, unless we are ``closing`` it."""
        if not closing:
            self.timed_out(record, "first_byte" if first else "keep_alive")

    def refused(self, record: CloseRecord, method: str, status: int) -> None:
        """A request answered without calling the app: 413 (too large) or 503 (at capacity)."""
        self.request_done(method, status, 0.0, 0, 0)
        if status == 413:
            self.protocol_error(record, status)

    def count_timeout(self, kind: str) -> None:
        """A deadline that does not close a connection (``graceful_shutdown``, an HTTP/2
        stream's ``write``), or one counted at the close (a connection's ``write``)."""
        self.timeouts[kind] = self.timeouts.get(kind, 0) + 1

    def protocol_error(self, record: CloseRecord | None, status: int) -> None:
        """A request refused as malformed or too large with ``status``; the connection closes."""
        self.protocol_errors[status] = self.protocol_errors.get(status, 0) + 1
        if record is not None:
            record.close_reason = "protocol_error"

    # --- WebSocket --------------------------------------------------------------------------

    def websocket_event(self, event: str, code: int | None) -> None:
        """``accept``; ``reject`` with an HTTP status; ``close`` with a close code."""
        if event == "accept":
            self.ws_sessions += 1
        elif event == "close":
            code = 1005 if code is None else code
            self.ws_closes[code] = self.ws_closes.get(code, 0) + 1
        elif event == "reject":
            code = 403 if code is None else code
            self.ws_rejects[code] = self.ws_rejects.get(code, 0) + 1

    # --- reading ----------------------------------------------------------------------------

    def statistics(
        self, *, open_connections: int, requests_in_flight: int, requests_served: int
    ) -> ServerStatistics:
        requests = {
            (method, _STATUS_CLASSES[status_class]): count
            for method, counts in self.requests.items()
            for status_class, count in enumerate(counts)
            if count
        }
        return ServerStatistics(
            open_connections=open_connections,
            requests_in_flight=requests_in_flight,
            requests_served=requests_served,
            pid=os.getpid(),
            connections_opened=self.opened,
            connections_closed=dict(self.closed),
            requests=requests,
            bytes_received=self.bytes_received,
            bytes_sent=self.bytes_sent,
            websocket_sessions=self.ws_sessions,
            websocket_sessions_open=self.ws_sessions - sum(self.ws_closes.values()),
            websocket_closes=dict(self.ws_closes),
            websocket_rejects=dict(self.ws_rejects),
            protocol_errors=dict(self.protocol_errors),
            timeouts=dict(self.timeouts),
            lifespan=self.lifespan,
            request_duration=self._histogram(
                DURATION_BUCKETS, self.duration_counts, self.duration_sum
            ),
            response_size=self._histogram(SIZE_BUCKETS, self.size_counts, float(self.bytes_sent)),
        )

    def _histogram(
        self, bounds: tuple[float, ...], counts: list[int], total: float
    ) -> HistogramSnapshot | None:
        return HistogramSnapshot(bounds, tuple(counts), total) if self.histograms else None


class ObservingMetrics(Metrics):
    """:class:`Metrics` that also observe each request's duration and response size."""

    histograms: ClassVar[bool] = True

    __slots__ = ()

    def request_done(
        self, method: str, status: int, duration: float, received: int, sent: int
    ) -> None:
        """:meth:`Metrics.request_done`, and the duration and size in their histograms.

        Written out rather than calling the base method and a histogram's: each call and
        attribute chain is a noticeable part of the budget (``bench/metrics_cost.py``).
        """
        self.requests[method][status // 100] += 1
        self.bytes_received += received
        self.bytes_sent += sent
        self.duration_counts[bisect_left(DURATION_BUCKETS, duration)] += 1
        self.duration_sum += duration
        self.size_counts[bisect_left(SIZE_BUCKETS, sent)] += 1
