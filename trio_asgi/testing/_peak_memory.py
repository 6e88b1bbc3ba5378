"""A bound on the memory a block allocates: a request body must be streamed, not held.

An app that joins every ``http.request`` body into one ``bytes`` before it looks at
it holds the whole upload in memory: fine for a test's 1 KiB, not for a client's
2 GiB. :func:`max_peak` measures it with :mod:`tracemalloc`: the peak of memory
allocated inside the block (by the test, the server and the app alike) must stay
under a bound that is much smaller than what the test sends.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class PeakMemory:
    """The measure :func:`max_peak` took.

    Attributes:
        limit: The bound, in bytes.
        peak: The most bytes allocated inside the block at once (known on exit).
    """

    limit: int
    peak: int = 0


@contextmanager
def max_peak(limit: int) -> Iterator[PeakMemory]:
    """Fail if the block's allocations ever total more than ``limit`` bytes at once.

    Memory allocated before the block (the request the test is about to send, say)
    does not count. Tracing slows the block down several times: use it in a test of
    its own, with one large request.

    Args:
        limit: The bound, in bytes.

    Yields:
        A :class:`PeakMemory` whose ``peak`` is set on exit.

    Raises:
        AssertionError: The peak went over ``limit``.

    Example:
        >>> with max_peak(1 << 20) as measure:
        ...     chunks = [bytes(1024) for _ in range(100)]
        >>> measure.peak < 1 << 20
        True
    """
    measure = PeakMemory(limit)
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    try:
        yield measure
    finally:
        measure.peak = tracemalloc.get_traced_memory()[1] - baseline
        if started:
            tracemalloc.stop()
    assert measure.peak <= limit, (
        f"{measure.peak} bytes allocated at once, over the bound of {limit}: "
        "something holds what should be streamed"
    )
