"""The lean per-connection tables behave exactly as the ones they replace.

:mod:`trio_asgi._protocol._http2_lean_tables` swaps hpack's dynamic-table deques for
lists and h2's per-connection dispatch dict for one kept on the class; the reset
tracker and flood counter of :mod:`trio_asgi._protocol._http2_limits` dropped their
deque and dicts. Each is checked against what it replaced: hpack's own coders with
deques (byte for byte, over evictions), h2's own dispatch dict, and reference models
of the two counters as they were.
"""

from __future__ import annotations

import collections
from typing import Any

import h2.config
import h2.connection
import hpack
from http2_helpers import REQUEST, Pair
from hyperframe.frame import HeadersFrame
from hypothesis import given
from hypothesis import strategies as st

from trio_asgi._protocol._http2_errors import ServerH2Connection
from trio_asgi._protocol._http2_lean_tables import DynamicEntries, compact_hpack_tables
from trio_asgi._protocol._http2_limits import Flood, FloodCounter, H2Settings, ResetTracker

# --- hpack's dynamic tables --------------------------------------------------------------

NAMES = st.sampled_from([b"x-a", b"x-b", b"cookie", b"content-type", b":path", b"x-long" * 9])
VALUES = st.binary(min_size=0, max_size=40)
BLOCKS = st.lists(st.lists(st.tuples(NAMES, VALUES), min_size=1, max_size=6), max_size=12)


def entries_type(coder: Any) -> type:
    return type(coder.header_table.dynamic_entries)


@given(blocks=BLOCKS, table_size=st.sampled_from([0, 64, 200, 4096]))
def test_lists_code_as_hpacks_deques_do(
    blocks: list[list[tuple[bytes, bytes]]], table_size: int
) -> None:
    """Same bytes out of the encoder, same fields out of the decoder, evictions included."""
    plain_encoder, plain_decoder = hpack.Encoder(), hpack.Decoder()
    lean_encoder, lean_decoder = hpack.Encoder(), hpack.Decoder()
    compact_hpack_tables(lean_encoder, lean_decoder)
    for encoder in (plain_encoder, lean_encoder):
        encoder.header_table_size = table_size
    for block in blocks:
        encoded = plain_encoder.encode(block)
        assert lean_encoder.encode(block) == encoded
        assert lean_decoder.decode(encoded, raw=True) == plain_decoder.decode(encoded, raw=True)
        for plain, lean in ((plain_encoder, lean_encoder), (plain_decoder, lean_decoder)):
            assert list(lean.header_table.dynamic_entries) == list(
                plain.header_table.dynamic_entries
            )
    assert entries_type(lean_encoder) is entries_type(lean_decoder) is DynamicEntries


def test_a_served_connection_holds_the_lean_tables() -> None:
    pair = Pair()
    pair.request(REQUEST)
    pair.exchange()
    conn = pair.server._h2
    assert "_frame_dispatch_table" not in vars(conn)
    assert entries_type(conn.encoder) is entries_type(conn.decoder) is DynamicEntries
    # The request's :authority was indexed by the client: the decoder's table has it.
    assert (b":authority", b"example.com") in conn.decoder.header_table.dynamic_entries


# --- h2's frame dispatch ---------------------------------------------------------------


def test_dispatch_binds_what_h2s_own_dict_holds() -> None:
    config: dict[str, Any] = {"client_side": False, "header_encoding": None}
    plain = h2.connection.H2Connection(h2.config.H2Configuration(**config))
    pair = Pair()
    ours = pair.server._h2
    table = ours._frame_dispatch_table
    for frame_class, method in plain._frame_dispatch_table.items():
        bound = table[frame_class]
        assert bound.__self__ is ours
        # The same method, or our override of it (found as h2's self.<name> finds it).
        assert bound.__name__ == method.__name__
        assert bound == getattr(ours, method.__name__)
    # Our override of HEADERS handling is the one dispatched, as in h2's own dict.
    assert table[HeadersFrame].__func__ is ServerH2Connection._receive_headers_frame


# --- the reset tracker and flood counter ----------------------------------------------


class DequeResetTracker:
    """The tracker as it was: a deque of the last ``window`` stream ids."""

    def __init__(self, window: int, limit: int) -> None:
        self.recent: collections.deque[int] = collections.deque(maxlen=window)
        self.reset_ids: set[int] = set()
        self.resets = 0
        self.limit = limit

    def stream_opened(self, stream_id: int) -> None:
        if len(self.recent) == self.recent.maxlen:
            oldest = self.recent[0]
            if oldest in self.reset_ids:
                self.reset_ids.discard(oldest)
                self.resets -= 1
        self.recent.append(stream_id)

    def stream_reset(self, stream_id: int) -> bool:
        if not self.recent or stream_id > self.recent[-1]:
            self.stream_opened(stream_id)
        if stream_id in self.recent and stream_id not in self.reset_ids:
            self.reset_ids.add(stream_id)
            self.resets += 1
        return self.resets > self.limit


# (open a new stream | reset a stream, by how far back it is from the newest id)
STEPS = st.lists(st.one_of(st.just(None), st.integers(min_value=-12, max_value=3)), max_size=80)


@given(steps=STEPS)
def test_the_reset_tracker_counts_as_the_deque_did(steps: list[int | None]) -> None:
    settings = H2Settings(reset_window_streams=5, max_resets_in_window=3)
    tracker = ResetTracker(settings)
    model = DequeResetTracker(5, 3)
    newest = 1
    for step in steps:
        if step is None:
            newest += 2
            tracker.stream_opened(newest)
            model.stream_opened(newest)
        else:
            stream_id = max(1, newest + 2 * step)
            assert tracker.stream_reset(stream_id) == model.stream_reset(stream_id)
        assert tracker.resets == model.resets


def test_the_reset_tracker_makes_its_set_at_the_first_reset() -> None:
    tracker = ResetTracker(H2Settings())
    for stream_id in range(1, 1001, 2):
        tracker.stream_opened(stream_id)
    assert tracker._reset_ids is None
    assert len(tracker._recent) == H2Settings().reset_window_streams
    assert not tracker.stream_reset(999)
    assert tracker.resets == 1


@given(
    frames=st.lists(
        st.tuples(st.sampled_from(list(Flood)), st.floats(min_value=0, max_value=5)), max_size=60
    )
)
def test_the_flood_counter_counts_each_kind_per_interval(frames: list[tuple[Flood, float]]) -> None:
    settings = H2Settings(
        flood_interval=2.0,
        max_settings_per_interval=2,
        max_pings_per_interval=3,
        max_priority_per_interval=4,
        max_empty_data_per_interval=1,
        max_window_updates_per_interval=5,
    )
    budgets = {
        Flood.SETTINGS: 2,
        Flood.PING: 3,
        Flood.PRIORITY: 4,
        Flood.EMPTY_DATA: 1,
        Flood.WINDOW_UPDATE: 5,
    }
    counter = FloodCounter(settings)
    start: float | None = None
    counts: dict[Flood, int] = {}
    now = 0.0
    for kind, step in frames:
        now += step
        if start is None or now - start >= 2.0:
            start, counts = now, {}
        counts[kind] = counts.get(kind, 0) + 1
        assert counter.count(kind, now) == (counts[kind] > budgets[kind])
