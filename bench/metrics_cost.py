"""The per-request cost of recording metrics: ours against prometheus-client's.

    python bench/metrics_cost.py

A request records: its method and status class, bytes in and out, and (when metrics
are served) its duration and response size in histograms. The recorders are measured
in turns (ROUNDS rounds, each timing every recorder), so a busy machine slows them all
alike; each line gives the best and the median round, in microseconds per request,
including the call (the ``empty call`` line is a call that does nothing). The design's
budget is 1 µs.
"""

from __future__ import annotations

import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trio_asgi._metrics import DURATION_BUCKETS, SIZE_BUCKETS, new_metrics

NUMBER = 20_000
ROUNDS = 15


def prometheus_client_recorder() -> Callable[[], None] | None:
    """The same figures recorded with prometheus-client, or None if it is not installed."""
    try:
        from prometheus_client import CollectorRegistry, Counter, Histogram
    except ImportError:
        return None
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

    return record


def main() -> None:
    off = new_metrics(histograms=False).request_done
    on = new_metrics(histograms=True).request_done
    recorders: dict[str, Callable[[], object]] = {
        "empty call": lambda: None,
        "trio-asgi, histograms off": lambda: off("GET", 200, 0.0012, 0, 512),
        "trio-asgi, histograms on": lambda: on("GET", 200, 0.0012, 0, 512),
    }
    library = prometheus_client_recorder()
    if library is not None:
        recorders["prometheus-client, same figures"] = library
    rounds: dict[str, list[float]] = {name: [] for name in recorders}
    for _ in range(ROUNDS):
        for name, func in recorders.items():
            best = min(timeit.repeat(func, number=NUMBER, repeat=3))
            rounds[name].append(best / NUMBER * 1e6)
    for name, runs in rounds.items():
        print(f"{name:34} best {min(runs):6.3f} us   median {statistics.median(runs):6.3f} us")
    if library is None:
        print(f"{'prometheus-client':34} not installed")


if __name__ == "__main__":
    main()
