"""The per-request cost of recording metrics: ours against prometheus-client's.

    python bench/metrics_cost.py

A request records: its method and status class, bytes in and out, and (when metrics
are served) its duration and response size in histograms. Each line is the best of
seven runs, in microseconds per request; the design's budget is 1 µs.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trio_asgi._metrics import DURATION_BUCKETS, SIZE_BUCKETS, Metrics

NUMBER = 100_000


def best_us(func: object) -> float:
    runs = timeit.repeat(func, number=NUMBER, repeat=7)  # type: ignore[arg-type]
    return min(runs) / NUMBER * 1e6


def main() -> None:
    off = Metrics(histograms=False)
    on = Metrics(histograms=True)
    print(f"empty call                         {best_us(lambda: None):6.3f} us")
    print(
        "trio-asgi, histograms off          "
        f"{best_us(lambda: off.request_done('GET', 200, 0.0012, 0, 512)):6.3f} us"
    )
    print(
        "trio-asgi, histograms on           "
        f"{best_us(lambda: on.request_done('GET', 200, 0.0012, 0, 512)):6.3f} us"
    )
    try:
        from prometheus_client import CollectorRegistry, Counter, Histogram
    except ImportError:
        print("prometheus-client                  not installed")
        return
    registry = CollectorRegistry()
    requests = Counter("r", "", ["method", "status_class"], registry=registry)
    received = Counter("i", "", registry=registry)
    sent = Counter("o", "", registry=registry)
    duration = Histogram("d", "", buckets=DURATION_BUCKETS, registry=registry)
    size = Histogram("s", "", buckets=SIZE_BUCKETS, registry=registry)

    def record() -> None:
        requests.labels("GET", "2xx").inc()
        received.inc(0)
        sent.inc(512)
        duration.observe(0.0012)
        size.observe(512)

    print(f"prometheus-client, same figures    {best_us(record):6.3f} us")


if __name__ == "__main__":
    main()
