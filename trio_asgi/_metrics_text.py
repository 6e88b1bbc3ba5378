"""The Prometheus text exposition format (version 0.0.4) of :class:`ServerStatistics`.

Every sample has a ``pid`` label: one process renders its own figures today, and a
supervisor of worker processes can render several snapshots into one page
(:func:`render` takes a sequence), their series kept apart by ``pid``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from ._metrics import LIFESPAN_STATES, HistogramSnapshot, ServerStatistics

#: The Content-Type of the exposition.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "trio_asgi_"

Sample = tuple[dict[str, str], float]

#: (name, type, help, samples of one snapshot); the reference documents each one.
_FAMILIES: tuple[tuple[str, str, str, Callable[[ServerStatistics], Iterable[Sample]]], ...] = (
    (
        "connections_opened_total",
        "counter",
        "Connections accepted.",
        lambda s: [({}, s.connections_opened)],
    ),
    ("connections_open", "gauge", "Connections open now.", lambda s: [({}, s.open_connections)]),
    (
        "connections_closed_total",
        "counter",
        "Connections closed, by reason.",
        lambda s: [({"reason": r}, n) for r, n in sorted(s.connections_closed.items())],
    ),
    (
        "requests_total",
        "counter",
        "HTTP requests finished, by method and status class.",
        lambda s: [
            ({"method": m, "status_class": c}, n) for (m, c), n in sorted(s.requests.items())
        ],
    ),
    (
        "requests_in_flight",
        "gauge",
        "HTTP requests being answered and WebSocket sessions open now.",
        lambda s: [({}, s.requests_in_flight)],
    ),
    (
        "received_bytes_total",
        "counter",
        "HTTP request body bytes received.",
        lambda s: [({}, s.bytes_received)],
    ),
    (
        "sent_bytes_total",
        "counter",
        "HTTP response bytes sent (head and body).",
        lambda s: [({}, s.bytes_sent)],
    ),
    (
        "websocket_sessions_total",
        "counter",
        "WebSocket sessions accepted.",
        lambda s: [({}, s.websocket_sessions)],
    ),
    (
        "websocket_sessions_open",
        "gauge",
        "WebSocket sessions open now.",
        lambda s: [({}, s.websocket_sessions_open)],
    ),
    (
        "websocket_closes_total",
        "counter",
        "WebSocket sessions ended, by close code.",
        lambda s: [({"code": str(c)}, n) for c, n in sorted(s.websocket_closes.items())],
    ),
    (
        "websocket_rejects_total",
        "counter",
        "WebSocket handshakes answered with an HTTP status, by status.",
        lambda s: [({"status": str(c)}, n) for c, n in sorted(s.websocket_rejects.items())],
    ),
    (
        "protocol_errors_total",
        "counter",
        "Requests refused as malformed or too large, by status.",
        lambda s: [({"status": str(c)}, n) for c, n in sorted(s.protocol_errors.items())],
    ),
    (
        "timeouts_total",
        "counter",
        "Deadlines that passed, by kind.",
        lambda s: [({"kind": k}, n) for k, n in sorted(s.timeouts.items())],
    ),
    (
        "lifespan_state",
        "gauge",
        "1 for the lifespan state the server is in, 0 for the others.",
        lambda s: [({"state": st}, float(st == s.lifespan)) for st in LIFESPAN_STATES],
    ),
)


def render(snapshots: Sequence[ServerStatistics]) -> str:
    """The exposition of one or more snapshots (one per process)."""
    lines: list[str] = []
    for name, kind, help_text, samples in _FAMILIES:
        lines.append(f"# HELP {PREFIX}{name} {help_text}")
        lines.append(f"# TYPE {PREFIX}{name} {kind}")
        for stats in snapshots:
            pid = str(stats.pid)
            for labels, value in samples(stats):
                lines.append(_sample(PREFIX + name, {"pid": pid, **labels}, value))
    _histogram(
        lines,
        snapshots,
        "request_duration_seconds",
        "request_duration",
        "HTTP request duration, from the request head to the end of the app call, in seconds.",
    )
    _histogram(
        lines,
        snapshots,
        "response_size_bytes",
        "response_size",
        "HTTP response size (head and body), in bytes.",
    )
    lines.append("")
    return "\n".join(lines)


def _histogram(
    lines: list[str], snapshots: Sequence[ServerStatistics], name: str, field: str, help_text: str
) -> None:
    full = PREFIX + name
    lines.append(f"# HELP {full} {help_text}")
    lines.append(f"# TYPE {full} histogram")
    for stats in snapshots:
        histogram: HistogramSnapshot | None = getattr(stats, field)
        if histogram is None:
            continue
        pid = str(stats.pid)
        cumulative = 0
        for bound, count in zip(histogram.bounds, histogram.counts, strict=False):
            cumulative += count
            lines.append(_sample(f"{full}_bucket", {"pid": pid, "le": _number(bound)}, cumulative))
        lines.append(_sample(f"{full}_bucket", {"pid": pid, "le": "+Inf"}, histogram.count))
        lines.append(_sample(f"{full}_sum", {"pid": pid}, histogram.sum))
        lines.append(_sample(f"{full}_count", {"pid": pid}, histogram.count))


def _sample(name: str, labels: dict[str, str], value: float) -> str:
    text = ",".join(f'{key}="{_escape(val)}"' for key, val in labels.items())
    return f"{name}{{{text}}} {_number(value)}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))
