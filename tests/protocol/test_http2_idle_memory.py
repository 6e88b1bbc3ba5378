"""What an idle HTTP/2 connection's sans-IO core holds: a bound, and settings that still work.

h2 keeps every setting in a ``collections.deque`` (~760 bytes each); we swap them for
short lists once SETTINGS frames have been exchanged (``_http2_settings_store``), and
likewise hpack's dynamic tables; h2's dict of bound methods for frame dispatch is
kept once per class, and our reset tracker and flood counter hold no deque or dict
(``_http2_lean_tables``, ``_http2_limits``). The bound below fails with h2's deques
(about 18.6 KiB per core) and with the dispatch dict, hpack's deques and the tracker's
deque (9.5 KiB; 5.5 KiB without them), and the settings must still change as
RFC 9113 says after the swap.
"""

from __future__ import annotations

import gc
import tracemalloc

import h2.config
import h2.connection
import h2.events
import h2.settings
from http2_helpers import REQUEST, Pair

from trio_asgi._protocol._http2 import H2ServerConnection
from trio_asgi._protocol._http2_events import WindowOpened
from trio_asgi._protocol._http2_settings_store import SettingValues

#: KiB of Python heap per idle core (after the handshake), with room for other h2 versions.
IDLE_CORE_BOUND_KIB = 7.0
SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"


def client_preface() -> bytes:
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    client.initiate_connection()
    return client.data_to_send()


def idle_core(preface: bytes) -> H2ServerConnection:
    core = H2ServerConnection()
    core.receive_data(preface, 0.0)
    core.data_to_send()
    core.receive_data(SETTINGS_ACK, 0.0)  # our SETTINGS acknowledged
    return core


def test_an_idle_core_holds_little() -> None:
    preface = client_preface()
    idle_core(preface)  # first-use caches out of the figure
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cores = [idle_core(preface) for _ in range(50)]
        gc.collect()
        per_core = (tracemalloc.get_traced_memory()[0] - before) / len(cores) / 1024
    finally:
        tracemalloc.stop()
    assert per_core < IDLE_CORE_BOUND_KIB


def test_settings_are_lean_and_still_change() -> None:
    pair = Pair()
    h2_conn = pair.server._h2
    for settings in (h2_conn.local_settings, h2_conn.remote_settings):
        assert all(type(values) is SettingValues for values in settings._settings.values())
    # The client grows its stream window and adds a setting it had not sent before.
    stream_id = pair.request(REQUEST)
    pair.exchange()
    pair.client.update_settings(
        {
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 12345,
        }
    )
    events = pair.exchange()
    assert any(isinstance(event, WindowOpened) for event in events)
    remote = h2_conn.remote_settings
    assert remote.initial_window_size == 1 << 20
    assert remote.max_header_list_size == 12345
    assert all(type(values) is SettingValues for values in remote._settings.values())
    assert h2_conn.streams[stream_id].outbound_flow_control_window == 1 << 20
