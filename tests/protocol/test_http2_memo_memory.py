"""What the HTTP/2 memos leave on a connection that made one request and went idle.

The memos (``_hpack_memo``, :class:`RequestHeadMemo`, :class:`ResponseHeadMemo`) cut
the CPU of repeated requests, but most connections make one request or a few and
idle. Per connection they may then hold almost nothing: the head memos are shared by
a server's connections, and an HPACK coder remembers a block only once it comes twice
in a row. The bound below (what one request adds to an idle core's heap) fails with
per-connection memos remembering on first sight (3.3 KiB a core; 1.4 KiB now).
"""

from __future__ import annotations

import gc
import tracemalloc

from tests.protocol.http2_helpers import REQUEST, Pair
from trio_asgi._protocol._http2 import H2ServerConnection

#: KiB that one served request leaves on a core: the HPACK tables' new entries and h2's
#: closed-stream record (1.3 KiB before any memo), with a little room.
ONE_REQUEST_GROWTH_KIB = 1.6
HEADERS = [*REQUEST, (b"user-agent", b"h2load nghttp2/1.59.0"), (b"accept", b"*/*")]
RESPONSE = [
    (b"content-type", b"text/plain"),
    (b"content-length", b"13"),
    (b"date", b"Mon, 07 Dec 2026 17:00:00 GMT"),
    (b"server", b"trio-asgi"),
]


def served(requests: int) -> H2ServerConnection:
    """A core after the handshake and ``requests`` answered requests, as the server does."""
    pair = Pair()
    for _ in range(requests):
        stream_id = pair.request(HEADERS)
        pair.exchange()
        core = pair.server
        core.send_checked_head(stream_id, 200, core.response_heads.checked(200, list(RESPONSE)))
        core.send_body(stream_id, b"Hello, world!", end_stream=True)
        core.stream_finished(stream_id)
        pair.exchange()
    return pair.server


def heap_per_core(requests: int) -> float:
    """KiB of Python heap per core served ``requests`` times (the shared memos warm).

    The least of two runs: the first in a process still fills interpreter caches.
    """
    return min(_heap_per_core(requests) for _ in range(2))


def _heap_per_core(requests: int) -> float:
    warm = served(requests)  # first-use caches and the shared memos out of the figure
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cores = [served(requests) for _ in range(40)]
        gc.collect()
        per_core = (tracemalloc.get_traced_memory()[0] - before) / len(cores) / 1024
    finally:
        tracemalloc.stop()
    del warm, cores
    return per_core


def test_one_request_leaves_little_on_a_core() -> None:
    growth = heap_per_core(1) - heap_per_core(0)
    assert growth < ONE_REQUEST_GROWTH_KIB


def test_after_one_request_the_memos_hold_nothing_of_the_connection() -> None:
    core = served(1)
    h2_conn = core._h2
    # The first blocks inserted into the HPACK tables: nothing could be remembered.
    for coder in (h2_conn.decoder, h2_conn.encoder):
        assert (coder._memo, coder._candidate) == (None, None)  # type: ignore[attr-defined]
    # The head memos are the ones every connection with the same rules uses.
    other = served(1)
    assert other.response_heads is core.response_heads
    assert other._translator._heads is core._translator._heads


def test_the_second_request_leaves_only_a_hash() -> None:
    core = served(2)
    for coder in (core._h2.decoder, core._h2.encoder):
        assert coder._memo is None  # type: ignore[attr-defined]
        assert type(coder._candidate) is int  # type: ignore[attr-defined]


def test_a_shared_memo_goes_with_its_last_connection() -> None:
    core = served(1)
    memo = core._translator._heads
    assert memo.parse(HEADERS) is memo.parse(list(HEADERS))  # remembered
    ref = __import__("weakref").ref(memo)
    del core, memo
    gc.collect()
    assert ref() is None
