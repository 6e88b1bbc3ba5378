"""Test helpers for trio-asgi and for apps served by it (like :mod:`trio.testing`).

The hypothesis strategies live in :mod:`trio_asgi.testing.strategies`, imported on
demand so that this package does not need hypothesis.
"""

from __future__ import annotations

from ._streams import Address as Address
from ._streams import AnyIOByteStream as AnyIOByteStream
from ._streams import BoundedMemoryStream as BoundedMemoryStream
from ._streams import MemoryStreamStatistics as MemoryStreamStatistics
from ._streams import bounded_memory_stream_pair as bounded_memory_stream_pair
from ._streams import open_memory_connection as open_memory_connection
