"""The exposition text, the close-reason table and the hot-path recorder, without I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from prometheus_client.parser import text_string_to_metric_families

from trio_asgi import Config, ServerStatistics
from trio_asgi._config import ConfigError
from trio_asgi._metrics import DURATION_BUCKETS, close_reason, new_metrics
from trio_asgi._metrics_text import render


@dataclass
class Transport:
    write_timed_out: bool = False


@dataclass
class Conn:
    close_reason: str | None = None
    closing: bool = False
    upgraded: object = None
    transport: Transport = field(default_factory=Transport)


STALLED = Transport(write_timed_out=True)


class WebSocketSession:
    ends_connection_as = "websocket"


class H2Connection:
    pass


@pytest.mark.parametrize(
    ("conn", "shutting_down", "reason"),
    [
        (None, False, "error"),
        (Conn(close_reason="keep_alive_timeout"), True, "keep_alive_timeout"),
        (Conn(close_reason="body_timeout", transport=STALLED), False, "body_timeout"),
        (Conn(transport=STALLED, upgraded=WebSocketSession()), True, "write_timeout"),
        (Conn(), True, "shutdown"),
        (Conn(upgraded=WebSocketSession(), closing=True), False, "websocket"),
        (Conn(upgraded=H2Connection(), closing=True), False, "server_close"),
        (Conn(upgraded=H2Connection()), False, "client_close"),
        (Conn(closing=True), False, "server_close"),
        (Conn(), False, "client_close"),
    ],
)
def test_close_reasons(conn: Conn | None, shutting_down: bool, reason: str) -> None:
    assert close_reason(conn, shutting_down=shutting_down) == reason


def test_histograms_are_cumulative_and_methods_bounded() -> None:
    metrics = new_metrics(histograms=True)
    metrics.request_done("GET", 200, 0.0005, 0, 100)
    metrics.request_done("GET", 204, 0.2, 0, 100)
    for method in ("X1", "X2", "X3"):  # a client's invented methods share one label
        metrics.request_done(method, 400, 99.0, 10, 100)
    stats = metrics.statistics(open_connections=0, requests_in_flight=0, requests_served=5)
    assert stats.requests == {("GET", "2xx"): 2, ("OTHER", "4xx"): 3}
    assert len(metrics.requests) == 10  # the nine known methods and OTHER, never more
    assert stats.request_duration is not None
    assert stats.request_duration.count == 5
    families = {f.name: f for f in text_string_to_metric_families(render([stats]))}
    buckets = {
        s.labels["le"]: s.value
        for s in families["trio_asgi_request_duration_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert len(buckets) == len(DURATION_BUCKETS) + 1
    assert buckets["0.001"] == 1
    assert buckets["0.25"] == 2
    assert buckets["10"] == 2
    assert buckets["+Inf"] == 5


def test_several_processes_and_label_escaping() -> None:
    one = ServerStatistics(1, 0, 0, pid=11, connections_closed={'we"ird\\\n': 1})
    two = ServerStatistics(2, 0, 0, pid=22)
    text = render([one, two])
    families = {f.name: f for f in text_string_to_metric_families(text)}
    open_now = {s.labels["pid"]: s.value for s in families["trio_asgi_connections_open"].samples}
    assert open_now == {"11": 1, "22": 2}
    (closed,) = families["trio_asgi_connections_closed"].samples
    assert closed.labels["reason"] == 'we"ird\\\n'


def test_statistics_keep_their_short_form() -> None:
    stats = ServerStatistics(1, 2, 3, connections_opened=9)
    assert stats == ServerStatistics(1, 2, 3)
    assert (
        repr(stats)
        == "ServerStatistics(open_connections=1, requests_in_flight=2, requests_served=3)"
    )


@pytest.mark.parametrize("bind", ["unix:/tmp/x", "nonsense", "fd://3"])
def test_metrics_bind_must_be_tcp(bind: str) -> None:
    with pytest.raises(ConfigError, match="metrics_bind"):
        Config(metrics_bind=bind)


def test_wsgi_threads_checked() -> None:
    with pytest.raises(ConfigError, match="wsgi_threads"):
        Config(wsgi_threads=0)


def test_a_stalled_write_counts_a_write_timeout_whatever_the_close_reason() -> None:
    metrics = new_metrics(histograms=False)
    metrics.connection_closed(Conn(transport=STALLED), shutting_down=False)
    # A body timeout whose 408 reply then stalled: the first reason stays.
    metrics.connection_closed(
        Conn(close_reason="body_timeout", transport=STALLED), shutting_down=False
    )
    metrics.connection_closed(Conn(), shutting_down=False)
    metrics.connection_closed(None, shutting_down=False)
    stats = metrics.statistics(open_connections=0, requests_in_flight=0, requests_served=0)
    assert stats.timeouts == {"write": 2}
    assert stats.connections_closed == {
        "write_timeout": 1,
        "body_timeout": 1,
        "client_close": 1,
        "error": 1,
    }
