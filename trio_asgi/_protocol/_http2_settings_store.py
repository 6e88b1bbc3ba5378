"""Leaner storage for h2's settings: a short list per setting where h2 keeps a deque.

h2's :class:`~h2.settings.Settings` holds each setting's current value, and the values
proposed after it, in a ``collections.deque``: about 760 bytes each, some 11 KiB for the
two Settings objects of every connection, a third of what an idle HTTP/2 connection
costs (``bench/idle_client.py --h2``). A list of one or two ints does the same job in
under 100 bytes: h2 only appends to it, pops from its left, reads index 0 and its length.
"""

from __future__ import annotations

from typing import Any

import h2.settings


class SettingValues(list[Any]):
    """A setting's current value, then any proposed values (a ``deque`` in h2)."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


def compact_settings(settings: h2.settings.Settings) -> None:
    """Swap each of ``settings``' deques for a :class:`SettingValues` (new ones only)."""
    store: dict[Any, Any] = settings._settings
    for key, values in store.items():
        if type(values) is not SettingValues:
            store[key] = SettingValues(values)
