"""The toolkit's client-side waiting, on trio or asyncio: read deadlines and forced closes.

The client streams are trio streams (trio's ABCs and exceptions need no trio run), so
the toolkit keeps trio's vocabulary, :exc:`trio.TooSlowError` for a read that waits
too long, while waiting through anyio, which runs on both backends.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import trio


@contextmanager
def read_deadline(seconds: float | None) -> Iterator[None]:
    """``trio.fail_after(seconds)`` on either backend; ``None`` waits forever.

    Raises:
        trio.TooSlowError: The block was still running after ``seconds``.
    """
    with anyio.move_on_after(math.inf if seconds is None else seconds) as scope:
        yield
    if scope.cancelled_caught:
        raise trio.TooSlowError


async def aclose_forcefully(resource: trio.abc.AsyncResource) -> None:
    """``trio.aclose_forcefully`` on either backend: close without waiting for anything."""
    with anyio.CancelScope() as scope:
        scope.cancel()
        await resource.aclose()
