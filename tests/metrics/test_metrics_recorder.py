"""The per-request recorder (``Metrics.request_done``) counts exactly what a plain model
of the exposition's meaning says, for any requests, and its figures are pinned as text.

The recorder is written for speed (see ``bench/metrics_cost.py``); these tests hold it
to the plain reading: a request counts under its method (``OTHER`` for any other) and
status class, and in the first bucket whose bound is at or above its value.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from trio_asgi._metrics import DURATION_BUCKETS, KNOWN_METHODS, SIZE_BUCKETS, Metrics, new_metrics
from trio_asgi._metrics_text import render

Record = tuple[str, int, float, int, int]

_CLASSES = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")

methods = st.sampled_from(sorted(KNOWN_METHODS)) | st.sampled_from(["BREW", "get", "OTHER", ""])
statuses = st.just(0) | st.integers(100, 599)
#: Exactly on a bound, just past one, and anywhere.
durations = (
    st.sampled_from(DURATION_BUCKETS)
    | st.sampled_from(DURATION_BUCKETS).map(lambda bound: bound * (1 + 1e-12))
    | st.floats(0.0, 100.0)
)
sizes = (
    st.sampled_from(SIZE_BUCKETS).flatmap(
        lambda bound: st.sampled_from([bound - 1, bound, bound + 1])
    )
    | st.integers(0, 2**40)
    | st.integers(2**40, 2**63)
)
records = st.lists(st.tuples(methods, statuses, durations, st.integers(0, 2**40), sizes))


def bucket_counts(bounds: tuple[float, ...], values: list[float]) -> tuple[int, ...]:
    """Observations per bucket, not cumulative: the first bound at or above each value."""
    counts = [0] * (len(bounds) + 1)
    for value in values:
        index = next((i for i, bound in enumerate(bounds) if value <= bound), len(bounds))
        counts[index] += 1
    return tuple(counts)


def record_all(items: list[Record], *, histograms: bool) -> Metrics:
    metrics = new_metrics(histograms=histograms)
    for item in items:
        metrics.request_done(*item)
    return metrics


@given(records)
def test_recorder_matches_the_plain_model(items: list[Record]) -> None:
    stats = record_all(items, histograms=True).statistics(
        open_connections=0, requests_in_flight=0, requests_served=len(items)
    )
    expected: dict[tuple[str, str], int] = {}
    for method, status, _, _, _ in items:
        key = (method if method in KNOWN_METHODS else "OTHER", _CLASSES[status // 100])
        expected[key] = expected.get(key, 0) + 1
    assert stats.requests == expected
    assert stats.bytes_received == sum(item[3] for item in items)
    assert stats.bytes_sent == sum(item[4] for item in items)
    duration, size = stats.request_duration, stats.response_size
    assert duration is not None
    assert size is not None
    assert duration.bounds == DURATION_BUCKETS
    assert duration.counts == bucket_counts(DURATION_BUCKETS, [item[2] for item in items])
    assert size.bounds == SIZE_BUCKETS
    assert size.counts == bucket_counts(SIZE_BUCKETS, [float(item[4]) for item in items])
    total = 0.0
    for item in items:  # in the order observed: a float sum depends on it
        total += item[2]
    assert duration.sum == total
    assert size.sum == float(sum(item[4] for item in items))


@given(records)
def test_without_histograms_the_counters_are_the_same(items: list[Record]) -> None:
    def snapshot(histograms: bool) -> tuple[object, ...]:
        stats = record_all(items, histograms=histograms).statistics(
            open_connections=0, requests_in_flight=0, requests_served=0
        )
        return stats.requests, stats.bytes_received, stats.bytes_sent

    assert snapshot(histograms=False) == snapshot(histograms=True)
    off = record_all(items, histograms=False)
    stats = off.statistics(open_connections=0, requests_in_flight=0, requests_served=0)
    assert stats.request_duration is None
    assert stats.response_size is None


#: Edge values: on a bound, just past one, zero, above the last bound, no response.
PINNED_RECORDS: list[Record] = [
    ("GET", 200, 0.001, 0, 64),
    ("GET", 200, 0.0010001, 5, 65),
    ("POST", 201, 0.0, 10, 0),
    ("HEAD", 304, 10.0, 0, 16777216),
    ("HEAD", 304, 10.5, 0, 16777217),
    ("BREW", 418, 0.0025, 3, 256),
    ("GET", 0, 0.00012, 0, 0),
    ("DELETE", 503, 2.5, 0, 1),
    ("PATCH", 101, 0.3, 7, 1048576),
]

#: The exposition's request lines for PINNED_RECORDS, as rendered before the recorder
#: was made faster: every figure must stay the same.
PINNED_TEXT = """\
trio_asgi_requests_total{pid="7",method="DELETE",status_class="5xx"} 1
trio_asgi_requests_total{pid="7",method="GET",status_class="2xx"} 2
trio_asgi_requests_total{pid="7",method="GET",status_class="none"} 1
trio_asgi_requests_total{pid="7",method="HEAD",status_class="3xx"} 2
trio_asgi_requests_total{pid="7",method="OTHER",status_class="4xx"} 1
trio_asgi_requests_total{pid="7",method="PATCH",status_class="1xx"} 1
trio_asgi_requests_total{pid="7",method="POST",status_class="2xx"} 1
trio_asgi_received_bytes_total{pid="7"} 25
trio_asgi_sent_bytes_total{pid="7"} 34603395
trio_asgi_request_duration_seconds_bucket{pid="7",le="0.001"} 3
trio_asgi_request_duration_seconds_bucket{pid="7",le="0.0025"} 5
trio_asgi_request_duration_seconds_bucket{pid="7",le="0.005"} 5
trio_asgi_request_duration_seconds_bucket{pid="7",le="0.01"} 5
trio_asgi_request_duration_seconds_bucket{pid="7",le="0.025"} 5
trio_asgi_request_duration_seconds_bucket{pid="7",le="0.05"} 5
trio_asgi_request_duration_seconds_bucket{pid="7",le="0.1"} 5
trio_asgi_request_duration_seconds_bucket{pid="7",le="0.25"} 5
trio_asgi_request_duration_seconds_bucket{pid="7",le="0.5"} 6
trio_asgi_request_duration_seconds_bucket{pid="7",le="1"} 6
trio_asgi_request_duration_seconds_bucket{pid="7",le="2.5"} 7
trio_asgi_request_duration_seconds_bucket{pid="7",le="5"} 7
trio_asgi_request_duration_seconds_bucket{pid="7",le="10"} 8
trio_asgi_request_duration_seconds_bucket{pid="7",le="+Inf"} 9
trio_asgi_request_duration_seconds_sum{pid="7"} 23.3046201
trio_asgi_request_duration_seconds_count{pid="7"} 9
trio_asgi_response_size_bytes_bucket{pid="7",le="64"} 4
trio_asgi_response_size_bytes_bucket{pid="7",le="256"} 6
trio_asgi_response_size_bytes_bucket{pid="7",le="1024"} 6
trio_asgi_response_size_bytes_bucket{pid="7",le="4096"} 6
trio_asgi_response_size_bytes_bucket{pid="7",le="16384"} 6
trio_asgi_response_size_bytes_bucket{pid="7",le="65536"} 6
trio_asgi_response_size_bytes_bucket{pid="7",le="262144"} 6
trio_asgi_response_size_bytes_bucket{pid="7",le="1048576"} 7
trio_asgi_response_size_bytes_bucket{pid="7",le="4194304"} 7
trio_asgi_response_size_bytes_bucket{pid="7",le="16777216"} 8
trio_asgi_response_size_bytes_bucket{pid="7",le="+Inf"} 9
trio_asgi_response_size_bytes_sum{pid="7"} 34603395
trio_asgi_response_size_bytes_count{pid="7"} 9
"""


def test_pinned_exposition() -> None:
    stats = record_all(PINNED_RECORDS, histograms=True).statistics(
        open_connections=0, requests_in_flight=0, requests_served=len(PINNED_RECORDS)
    )
    text = render([dataclasses.replace(stats, pid=7)])
    wanted = ("requests_total", "bytes_total", "request_duration", "response_size")
    lines = [
        line
        for line in text.splitlines()
        if not line.startswith("#") and any(name in line for name in wanted)
    ]
    assert "\n".join(lines) + "\n" == PINNED_TEXT
