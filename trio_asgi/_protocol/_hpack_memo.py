"""HPACK coders that remember the header blocks a connection repeats.

Most HTTP/2 requests on one connection carry the same header block byte for byte
(the client indexed every field on the first request and now sends only indices),
and most responses carry the same fields (``:status``, ``content-type``, ...). HPACK
coding is a pure function of the bytes (or fields) and the dynamic table, so while
the table is unchanged a block coded before codes the same again. These coders keep
a few such results, and only for a coding that left the table as it found it (an
indexed field, or a literal without indexing; no insertion, no eviction, no size
update): replaying one leaves the table as the real coding would, so the next block
is coded in the same context.

A block is remembered only when it comes a second time in a row: until then a coder
keeps just the hash of the last block it could have remembered (an ``int``; a hash
collision costs only a needless entry, never a wrong result), and it makes its memo
dict on the first entry and drops it when the table changes. So a connection that
made one request holds no memo at all (its first blocks insert into the table), and
an idle one at most an int.

:class:`CountingHeaderTable` counts every change of the dynamic table (insertion,
eviction, resize); a remembered result is valid only for the count it was made
under. The results are byte-identical to hpack's own coders, errors included; the
differential tests in ``tests/protocol/test_hpack_memo.py`` hold them to that.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hpack import Decoder, Encoder, HeaderTuple, OversizedHeaderListError
from hpack.table import HeaderTable

from ._bounded_memo import remember

#: Results kept per coder; a connection repeats a handful of distinct blocks.
MEMO_ENTRIES = 8
#: A decoded block is remembered only up to this size (RFC 7541's measure: 32 bytes
#: a field plus name and value), so a connection's memo holds at most 8 x 4 KiB.
MAX_DECODED_SIZE = 4096
#: An encoded block is remembered only up to this many bytes.
MAX_ENCODED_SIZE = 1024


class CountingHeaderTable(HeaderTable):
    """hpack's header table, counting every change of its dynamic part in ``changes``."""

    def __init__(self) -> None:
        super().__init__()
        self.changes = 0

    def add(self, name: bytes, value: bytes) -> None:
        # An insertion, or (an entry larger than the table) the table emptied.
        self.changes += 1
        super().add(name, value)

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, newmax: int) -> None:
        # A resize may evict; counting every assignment (even to the same size) is
        # the simple safe side: a remembered block is then only coded once more.
        self.changes += 1
        HeaderTable.maxsize.fset(self, newmax)  # type: ignore[attr-defined]


class MemoDecoder(Decoder):
    """:class:`hpack.Decoder` that returns a remembered list for a repeated block.

    Only ``raw=True`` (what h2 asks for) is remembered. ``max_header_list_size`` and
    ``max_allowed_table_size`` are read on every call, so a bound lowered between two
    identical blocks fails the second as the plain decoder would.
    """

    def __init__(self, max_header_list_size: int = 2**16) -> None:
        super().__init__(max_header_list_size)
        self.header_table: CountingHeaderTable = CountingHeaderTable()
        self.max_allowed_table_size = self.header_table.maxsize
        #: block -> (its fields, their RFC 7541 size), valid for ``_memo_changes``;
        #: ``None`` until a block comes twice in a row.
        self._memo: dict[bytes, tuple[list[HeaderTuple], int]] | None = None
        #: The hash of the last block that left the table as it was, not remembered.
        self._candidate: int | None = None
        self._memo_changes = 0

    def decode(self, data: bytes, raw: bool = False) -> Iterable[HeaderTuple]:
        if not raw or type(data) is not bytes:
            return super().decode(data, raw)
        table = self.header_table
        changes = table.changes
        if changes != self._memo_changes:  # what is remembered was for another table
            self._memo = self._candidate = None
            self._memo_changes = changes
        memo = self._memo
        if memo is not None:
            hit = memo.get(data)
            if hit is not None:
                return self._replay(*hit)
        headers = super().decode(data, raw)
        if table.changes == changes:
            key = hash(data)
            if key == self._candidate:
                self._remember(data, headers)
            else:
                self._candidate = key
        return headers

    def _replay(self, headers: list[HeaderTuple], size: int) -> list[HeaderTuple]:
        # The plain decoder's two checks, in its order: the list bound while decoding
        # (the sizes only grow, so the total is over it exactly when a prefix is),
        # then the table size against the allowed maximum.
        if size > self.max_header_list_size:
            msg = f"A header list larger than {self.max_header_list_size} has been received"
            raise OversizedHeaderListError(msg)
        self._assert_valid_table_size()
        return list(headers)  # the caller may edit its list (cookie crumbs are joined)

    def _remember(self, data: bytes, headers: Iterable[HeaderTuple]) -> None:
        fields = list(headers)
        size = sum(32 + len(name) + len(value) for name, value in fields)
        if size > MAX_DECODED_SIZE:
            return
        self._candidate = None
        if self._memo is None:
            self._memo = {}
        remember(self._memo, data, (fields, size), MEMO_ENTRIES)


class MemoEncoder(Encoder):
    """:class:`hpack.Encoder` that returns the remembered bytes for repeated fields.

    Only a list or tuple of plain ``(bytes, bytes)`` tuples is remembered (what our
    response path passes); anything else (a :class:`hpack.NeverIndexedHeaderTuple`,
    a sensitivity flag, ``str`` or a dict) is encoded by hpack each time. Nothing is
    remembered while a table-size update is pending: that block must carry it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.header_table: CountingHeaderTable = CountingHeaderTable()
        #: fields -> their block, valid for ``_memo_changes``; ``None`` until the same
        #: fields come twice in a row.
        self._memo: dict[tuple[tuple[bytes, bytes], ...], bytes] | None = None
        #: The hash of the last fields whose coding left the table as it was.
        self._candidate: int | None = None
        self._memo_changes = 0

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        key = _plain_fields(headers)
        table = self.header_table
        if key is None or not huffman or table.resized:
            return super().encode(headers, huffman)
        changes = table.changes
        if changes != self._memo_changes:  # what is remembered was for another table
            self._memo = self._candidate = None
            self._memo_changes = changes
        memo = self._memo
        if memo is not None:
            hit = memo.get(key)
            if hit is not None:
                return hit
        encoded = super().encode(key, huffman)
        if table.changes == changes and len(encoded) <= MAX_ENCODED_SIZE:
            self._note(key, encoded)
        return encoded

    def _note(self, key: tuple[tuple[bytes, bytes], ...], encoded: bytes) -> None:
        """Remember ``key``'s block if it was the last one too; else make it the candidate."""
        candidate = hash(key)
        if candidate != self._candidate:
            self._candidate = candidate
            return
        self._candidate = None
        if self._memo is None:
            self._memo = {}
        remember(self._memo, key, encoded, MEMO_ENTRIES)


def _plain_fields(headers: Any) -> tuple[tuple[bytes, bytes], ...] | None:
    """``headers`` as a key if it is a list or tuple of exact ``(bytes, bytes)`` tuples.

    Exact types matter: a subclass or look-alike compares equal to a plain tuple
    (``NeverIndexedHeaderTuple``, ``memoryview``) yet encodes differently.
    """
    kind = type(headers)
    if kind is not list and kind is not tuple:
        return None
    for field in headers:
        if type(field) is not tuple or len(field) != 2:
            return None
        name, value = field
        if type(name) is not bytes or type(value) is not bytes:
            return None
    return tuple(headers)
