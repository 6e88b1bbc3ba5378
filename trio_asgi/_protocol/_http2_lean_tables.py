"""Leaner per-connection tables for h2 and hpack: same behaviour, fewer bytes per connection.

An idle HTTP/2 connection (``bench/idle_client.py --h2``) held two structures that
cost much and hold little:

- h2's ``_frame_dispatch_table``: a dict of twelve *bound methods* built in every
  connection's ``__init__`` (about 1.4 KiB: the dict and a method object per entry).
  :class:`FrameDispatch` is the same mapping kept once on the class: it records h2's
  frame-class-to-method-name pairs the first time h2 assigns its dict, and a lookup
  binds the one method it needs.
- hpack's dynamic tables (one in the encoder, one in the decoder): each a
  ``collections.deque``, 760 bytes even when empty. :class:`DynamicEntries` is a list
  with the one deque method hpack also calls (``appendleft``). hpack reads index
  ``i`` (newest first), iterates, ``len``, ``clear`` and ``pop()`` (the oldest):
  a list does each the same. ``appendleft`` moves the entries along, which is no
  worse than the linear ``search`` hpack's encoder already runs over the same
  entries for every header it encodes (and the decoder's table is bounded by our
  SETTINGS_HEADER_TABLE_SIZE: at most 128 entries at the default 4096).
"""

from __future__ import annotations

from typing import Any, ClassVar

import hpack


class DynamicEntries(list[Any]):
    """An hpack dynamic table's entries, newest first (a ``deque`` in hpack)."""

    __slots__ = ()

    def appendleft(self, entry: Any) -> None:
        self.insert(0, entry)


def compact_hpack_tables(encoder: hpack.Encoder, decoder: hpack.Decoder) -> None:
    """Swap the encoder's and decoder's dynamic-table deques for lists (entries kept)."""
    for table in (encoder.header_table, decoder.header_table):
        entries: Any = table.dynamic_entries
        if type(entries) is not DynamicEntries:
            table.dynamic_entries = DynamicEntries(entries)  # type: ignore[assignment]


class BoundDispatch:
    """One connection's view of :class:`FrameDispatch`: ``view[frame_class](frame)``."""

    __slots__ = ("_connection", "_names")

    def __init__(self, connection: object, names: dict[type, str]) -> None:
        self._connection = connection
        self._names = names

    def __getitem__(self, frame_class: type) -> Any:
        return getattr(self._connection, self._names[frame_class])


class FrameDispatch:
    """A class attribute standing in for h2's per-connection ``_frame_dispatch_table``.

    h2's ``__init__`` assigns a dict of bound methods to the attribute; as a data
    descriptor this takes the assignment, keeps only the method names (the same for
    every connection, so once per class) and drops the dict. Reading the attribute
    gives a :class:`BoundDispatch`, which binds on lookup: a subclass's override is
    found just as h2's ``self._receive_..._frame`` found it.
    """

    _names: ClassVar[dict[type, str] | None] = None

    def __get__(self, connection: object | None, owner: type) -> Any:
        if connection is None:
            return self
        names = FrameDispatch._names
        if names is None:
            raise AttributeError("_frame_dispatch_table is set by h2's __init__")
        return BoundDispatch(connection, names)

    def __set__(self, connection: object, table: dict[type, Any]) -> None:
        if FrameDispatch._names is not None:
            return  # the same names for every connection: the dict is dropped
        names = {frame_class: method.__name__ for frame_class, method in table.items()}
        for frame_class, method in table.items():
            # A method stored under another attribute name would not be found again.
            if getattr(connection, names[frame_class]) != method:
                raise TypeError(f"h2 dispatches {frame_class.__name__} to an unnamed method")
        FrameDispatch._names = names
