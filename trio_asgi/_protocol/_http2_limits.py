"""The HTTP/2 settings we advertise and the bounds we keep against abusive clients.

Nothing here reads a clock: every counter takes ``now`` (seconds, any monotonic
origin) from the caller, so the I/O layer passes its loop's clock and the tests pass
plain numbers.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Final

#: RFC 9113 section 6.5.2: the smallest and largest SETTINGS_MAX_FRAME_SIZE.
MIN_FRAME_SIZE = 16384
MAX_FRAME_SIZE = 16777215
#: RFC 9113 section 6.9.1: a flow-control window never exceeds 2^31-1.
MAX_WINDOW = 2**31 - 1
#: RFC 9113 section 5.1.1: the largest stream identifier, and the last-stream-id of
#: the first GOAWAY of a graceful shutdown (section 6.8).
MAX_STREAM_ID = 2**31 - 1
#: The PING payload of the graceful-shutdown round trip (RFC 9113 section 6.8).
SHUTDOWN_PING = b"trio-gwy"


@dataclass(frozen=True, slots=True)
class H2Settings:
    """What a server connection advertises and enforces (see ``docs/explanation/http2.rst``)."""

    #: SETTINGS_MAX_CONCURRENT_STREAMS; a stream over it gets RST_STREAM REFUSED_STREAM.
    max_concurrent_streams: int = 100
    #: SETTINGS_INITIAL_WINDOW_SIZE: unread request body per stream is bounded by it.
    initial_window_size: int = 65536
    #: The connection-level receive window (raised from 65,535 by a WINDOW_UPDATE at
    #: start): unread request body over all streams is bounded by it.
    connection_window_size: int = 1048576
    #: SETTINGS_MAX_FRAME_SIZE we accept; a larger frame is a FRAME_SIZE_ERROR before
    #: its payload is buffered.
    max_frame_size: int = MIN_FRAME_SIZE
    #: SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 section 6.5.2 counting: name + value +
    #: 32 per field). Over it: 431 on the stream. Tie it to ``Config.max_header_size``.
    max_header_list_size: int = 16384
    #: The decoder's hard bound, as a multiple of ``max_header_list_size``: a header
    #: list past it stops decoding with a connection error (HPACK bomb).
    hard_header_list_factor: int = 2
    #: SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table the client may make us keep.
    header_table_size: int = 4096
    #: Frames in one header block (HEADERS + CONTINUATION): more is a CONTINUATION flood.
    max_header_block_frames: int = 16
    #: SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441): WebSockets over HTTP/2.
    enable_connect_protocol: bool = True
    #: Output not yet taken by ``data_to_send()`` above which we ask the I/O layer to
    #: stop reading (``wants_read``), and send no more body.
    max_pending_output: int = 262144
    #: Output backlog past which a client that sends control frames and does not read
    #: our answers gets GOAWAY ENHANCE_YOUR_CALM.
    max_pending_output_hard: int = 1048576
    #: Rapid reset / MadeYouReset: of the streams opened most recently (this many), at
    #: most ``max_resets_in_window`` may end in a reset, by the client or by us because
    #: of the client's frames.
    reset_window_streams: int = 200
    max_resets_in_window: int = 100
    #: The interval (seconds) over which control frames are counted, and the budgets.
    flood_interval: float = 10.0
    max_settings_per_interval: int = 100
    max_pings_per_interval: int = 100
    max_priority_per_interval: int = 1000
    max_empty_data_per_interval: int = 100
    max_window_updates_per_interval: int = 10000

    def __post_init__(self) -> None:
        if not 1 <= self.max_concurrent_streams <= MAX_STREAM_ID:
            raise ValueError("max_concurrent_streams must be at least 1")
        if not 1 <= self.initial_window_size <= MAX_WINDOW:
            raise ValueError("initial_window_size must be 1 .. 2^31-1")
        if not 65535 <= self.connection_window_size <= MAX_WINDOW:
            raise ValueError("connection_window_size must be 65535 .. 2^31-1")
        if not MIN_FRAME_SIZE <= self.max_frame_size <= MAX_FRAME_SIZE:
            raise ValueError("max_frame_size must be 16384 .. 16777215")
        if self.max_header_list_size < 64 or self.hard_header_list_factor < 1:
            raise ValueError("max_header_list_size must be at least 64")
        if self.max_pending_output_hard < self.max_pending_output:
            raise ValueError("max_pending_output_hard must be at least max_pending_output")

    @property
    def hard_header_list_size(self) -> int:
        return self.max_header_list_size * self.hard_header_list_factor

    @property
    def max_header_block_bytes(self) -> int:
        """Encoded bytes in one header block: HPACK never needs more than the decoded size."""
        return self.hard_header_list_size


class Flood(enum.Enum):
    """The control frames we count; each has its own budget per interval."""

    SETTINGS = "settings"
    PING = "ping"
    PRIORITY = "priority"
    EMPTY_DATA = "empty DATA"
    WINDOW_UPDATE = "window update"


class FloodCounter:
    """Counts control frames per fixed interval; ``count`` says when a budget is spent.

    Every connection has one, so it is small: the budgets are one tuple per settings,
    shared, and the counts a short list indexed like :data:`_FLOOD_INDEX`.
    """

    __slots__ = ("_budgets", "_counts", "_interval", "_window_start")

    def __init__(self, settings: H2Settings) -> None:
        self._interval = settings.flood_interval
        self._budgets = _flood_budgets(settings)
        self._counts = [0] * len(_FLOOD_INDEX)
        self._window_start: float | None = None

    def count(self, kind: Flood, now: float) -> bool:
        """Count one frame; True when this frame is over its budget."""
        counts = self._counts
        if self._window_start is None or now - self._window_start >= self._interval:
            self._window_start = now
            counts[:] = _NO_COUNTS
        index = _FLOOD_INDEX[kind]
        counts[index] += 1
        return counts[index] > self._budgets[index]


_FLOOD_INDEX: Final = {kind: index for index, kind in enumerate(Flood)}
_NO_COUNTS: Final = (0,) * len(_FLOOD_INDEX)


@functools.lru_cache(maxsize=16)
def _flood_budgets(settings: H2Settings) -> tuple[int, ...]:
    """Each :class:`Flood`'s budget per interval, in :data:`_FLOOD_INDEX` order."""
    budgets = {
        Flood.SETTINGS: settings.max_settings_per_interval,
        Flood.PING: settings.max_pings_per_interval,
        Flood.PRIORITY: settings.max_priority_per_interval,
        Flood.EMPTY_DATA: settings.max_empty_data_per_interval,
        Flood.WINDOW_UPDATE: settings.max_window_updates_per_interval,
    }
    return tuple(budgets[kind] for kind in _FLOOD_INDEX)


class ResetTracker:
    """Rapid reset (CVE-2023-44487) and MadeYouReset (CVE-2025-8671) in one count.

    Of the last ``window`` streams the client opened, how many ended in a reset (one it
    sent, or one we sent because of its frames). Work and memory are bounded by the
    window: a list of at most ``window`` stream ids, oldest first, and the set of
    those that were reset, made at the first reset (most connections never see one).
    A list rather than a deque: an idle connection holds a few ids in under 100 bytes
    where a deque holds 760; dropping the oldest moves at most ``window`` pointers.
    """

    __slots__ = ("_limit", "_recent", "_reset_ids", "_resets", "_window")

    def __init__(self, settings: H2Settings) -> None:
        self._recent: list[int] = []
        self._window = settings.reset_window_streams
        self._reset_ids: set[int] | None = None
        self._resets = 0
        self._limit = settings.max_resets_in_window

    def stream_opened(self, stream_id: int) -> None:
        recent = self._recent
        if len(recent) >= self._window:
            oldest = recent.pop(0)
            if self._reset_ids is not None and oldest in self._reset_ids:
                self._reset_ids.discard(oldest)
                self._resets -= 1
        recent.append(stream_id)

    def stream_reset(self, stream_id: int) -> bool:
        """Count a reset; True when the connection is over its budget."""
        if not self._recent or stream_id > self._recent[-1]:
            # refused before it opened (malformed, over the limit): it counts as opened
            self.stream_opened(stream_id)
        if self._reset_ids is None:
            self._reset_ids = set()
        if stream_id not in self._reset_ids and stream_id in self._recent:
            self._reset_ids.add(stream_id)
            self._resets += 1
        return self._resets > self._limit

    @property
    def resets(self) -> int:
        return self._resets
