"""The remembering HPACK coders are hpack's own coders, byte for byte and error for error.

Differential tests: a plain :class:`hpack.Decoder` and our :class:`MemoDecoder` are fed
the same sequence of header blocks, made by a real :class:`hpack.Encoder` from a small
pool of fields (so blocks repeat, fields are indexed, inserted and evicted), mixed
with earlier blocks replayed against a changed table, table-size updates, changes of
both bounds, and garbage; a block also comes again several times in a row, which is
when the coders remember it. Each step must give the same fields (types included) or
the same error, and leave the same table. The encoder is held to the plain one the same
way.
"""

from __future__ import annotations

from typing import Any

import hpack
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.protocol.http2_helpers import REQUEST, Pair
from trio_asgi._protocol._hpack_memo import (
    MAX_DECODED_SIZE,
    MEMO_ENTRIES,
    MemoDecoder,
    MemoEncoder,
)

NAMES = [b":method", b":path", b"content-type", b"x-a", b"x-b", b"cookie"]
VALUES = [b"GET", b"/", b"text/plain", b"1", b"a" * 40, b"b" * 300, b"\xff\xfe", b""]

field = st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES))
field_list = st.lists(field, min_size=0, max_size=6)
table_size = st.sampled_from([0, 64, 256, 400, 4096])


def _encoder_input(draw_fields: list[tuple[bytes, bytes]], kind: int) -> Any:
    """The same fields in the shapes hpack accepts: plain, sensitive, typed, str, dict."""
    if kind == 1:
        return [(name, value, True) for name, value in draw_fields]
    if kind == 2:
        return [hpack.NeverIndexedHeaderTuple(name, value) for name, value in draw_fields]
    if kind == 3:
        return [hpack.HeaderTuple(name, value) for name, value in draw_fields]
    if kind == 4:
        return tuple(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in draw_fields
        )
    if kind == 5:
        return dict(draw_fields)
    return list(draw_fields)


decode_step = st.one_of(
    st.tuples(st.just("block"), field_list, st.integers(0, 5)),
    st.tuples(st.just("repeat"), st.integers(0, 50)),
    st.tuples(st.just("again"), st.integers(1, 3)),
    st.tuples(st.just("resize"), table_size),
    st.tuples(st.just("allowed"), table_size),
    st.tuples(st.just("limit"), st.sampled_from([40, 100, 400, 2**16])),
    st.tuples(st.just("garbage"), st.binary(max_size=12)),
)


def _outcome(decoder: hpack.Decoder, block: bytes) -> tuple[str, Any]:
    try:
        fields = decoder.decode(block, raw=True)
    except Exception as exc:  # every error must match, type and message
        return "error", (type(exc), str(exc))
    return "ok", [(type(f), tuple(f)) for f in fields]


def _table(coder: hpack.Decoder | hpack.Encoder) -> Any:
    table = coder.header_table
    return table.maxsize, table.resized, list(table.dynamic_entries), table._current_size


@settings(max_examples=400, deadline=None)
@given(st.lists(decode_step, max_size=40))
# Remembered on the third request, replayed on the fourth, then under a lower bound.
@example([("block", REQUEST, 0), ("again", 3), ("limit", 40), ("again", 1)])
def test_decoder_matches_hpack(steps: list[tuple[Any, ...]]) -> None:
    client = hpack.Encoder()
    plain, memo = hpack.Decoder(), MemoDecoder()
    blocks: list[bytes] = []
    for step in steps:
        kind = step[0]
        if kind == "resize":
            client.header_table_size = step[1]  # the next block carries the update
            continue
        if kind == "allowed":
            plain.max_allowed_table_size = memo.max_allowed_table_size = step[1]
            continue
        if kind == "limit":
            plain.max_header_list_size = memo.max_header_list_size = step[1]
            continue
        if kind == "block":
            block = client.encode(_encoder_input(step[1], step[2]))
        elif kind == "repeat":
            if not blocks:
                continue
            block = blocks[step[1] % len(blocks)]
        elif kind == "again":
            if not blocks:
                continue
            for _ in range(step[1]):
                assert _outcome(memo, blocks[-1]) == _outcome(plain, blocks[-1])
            block = blocks[-1]
        else:
            block = step[1]
        blocks.append(block)
        assert _outcome(memo, block) == _outcome(plain, block)
        assert _table(memo) == _table(plain)


encode_step = st.one_of(
    st.tuples(st.just("fields"), field_list, st.integers(0, 5)),
    st.tuples(st.just("repeat"), st.integers(0, 50), st.integers(0, 5)),
    st.tuples(st.just("again"), st.integers(1, 3), st.integers(0, 5)),
    st.tuples(st.just("resize"), table_size),
    st.tuples(st.just("huffman"), field_list),
)


ONE = [(b"x-a", b"1")]


@settings(max_examples=400, deadline=None)
@given(st.lists(encode_step, max_size=40))
# A remembered block must not carry a table-size update twice, nor its never-indexed
# form answer for the same fields as plain tuples.
@example([("fields", ONE, 0), ("again", 3, 0), ("resize", 256), ("fields", ONE, 0)] * 2)
@example([("fields", ONE, 0), ("again", 3, 0), ("fields", ONE, 2), ("fields", ONE, 0)])
def test_encoder_matches_hpack(steps: list[tuple[Any, ...]]) -> None:
    plain, memo = hpack.Encoder(), MemoEncoder()
    decoder = hpack.Decoder()  # what the peer makes of our blocks
    decoder.max_header_list_size = 2**20
    sent: list[list[tuple[bytes, bytes]]] = []
    resized = False
    for step in steps:
        kind = step[0]
        if kind == "resize":
            plain.header_table_size = memo.header_table_size = step[1]
            resized = True
            continue
        huffman = True
        if kind == "fields":
            fields, shape = step[1], step[2]
        elif kind == "repeat":
            if not sent:
                continue
            fields, shape = sent[step[1] % len(sent)], step[2]
        elif kind == "again":
            if not sent:
                continue
            fields, shape = sent[-1], step[2]
            for _ in range(step[1]):
                again = memo.encode(_encoder_input(fields, shape))
                assert again == plain.encode(_encoder_input(fields, shape))
                if not resized:
                    decoder.decode(again, raw=True)  # the peer's table follows ours
        else:
            fields, shape, huffman = step[1], 0, False
        sent.append(fields)
        ours = memo.encode(_encoder_input(fields, shape), huffman)
        assert ours == plain.encode(_encoder_input(fields, shape), huffman)
        assert _table(memo) == _table(plain)
        decoded = [tuple(f) for f in decoder.decode(ours, raw=True)] if not resized else []
        # (str fields are UTF-8 encoded, a dict drops repeated names, and hpack's encoder
        # forgets a pending size update when the same size is set twice in a row.)
        if shape < 4 and not resized:
            assert decoded == fields


def test_repeated_block_is_remembered_only_while_the_table_is_unchanged() -> None:
    client, memo = hpack.Encoder(), MemoDecoder()
    first = client.encode(REQUEST)  # inserts: not remembered
    memo.decode(first, raw=True)
    repeat = client.encode(REQUEST)  # all indexed now
    assert repeat != first
    assert memo.decode(repeat, raw=True) == REQUEST
    assert memo._memo is None  # seen once: only its hash is kept
    assert memo._candidate == hash(repeat)
    assert memo.decode(repeat, raw=True) == REQUEST
    assert memo._memo is not None
    assert list(memo._memo) == [repeat]
    memo.decode(client.encode([(b"x-new", b"1")]), raw=True)  # an insertion
    replayed = memo.decode(repeat, raw=True)  # indices moved: decoded afresh
    assert memo._memo is None  # dropped with the table it was for
    assert replayed != REQUEST
    assert replayed[-1] == (b"x-new", b"1")
    assert memo.decode(repeat, raw=True) == replayed
    assert memo._memo is not None
    assert memo._memo[repeat][0] == replayed  # remembered anew, for the new table


def test_only_a_block_repeated_in_a_row_is_remembered() -> None:
    memo = MemoDecoder()
    one, two = _literal_no_index([(b"x-a", b"1")]), _literal_no_index([(b"x-b", b"2")])
    for _ in range(4):
        memo.decode(one, raw=True)
        memo.decode(two, raw=True)
    assert memo._memo is None
    encoder = MemoEncoder()
    encoder.encode([(b"x-a", b"1")])  # both inserted: from now on each is one index
    encoder.encode([(b"x-b", b"2")])
    for _ in range(4):
        encoder.encode([(b"x-a", b"1")])
        encoder.encode([(b"x-b", b"2")])
    assert encoder._memo is None
    encoder.encode([(b"x-b", b"2")])
    assert encoder._memo == {((b"x-b", b"2"),): encoder.encode([(b"x-b", b"2")])}


def test_replayed_block_still_obeys_a_lowered_list_bound() -> None:
    client, memo = hpack.Encoder(), MemoDecoder()
    memo.decode(client.encode(REQUEST), raw=True)
    repeat = client.encode(REQUEST)
    memo.decode(repeat, raw=True)
    memo.decode(repeat, raw=True)  # remembered
    memo.max_header_list_size = 100
    with pytest.raises(hpack.OversizedHeaderListError):
        memo.decode(repeat, raw=True)


def test_memo_is_bounded() -> None:
    memo = MemoDecoder()
    for n in range(3 * MEMO_ENTRIES):
        block = _literal_no_index([(b":path", b"/%d" % n)])
        memo.decode(block, raw=True)
        memo.decode(block, raw=True)
    assert memo._memo is not None
    assert len(memo._memo) == MEMO_ENTRIES
    big = _literal_no_index([(b"x-big", b"v" * MAX_DECODED_SIZE)])
    memo.max_header_list_size = 2 * MAX_DECODED_SIZE
    memo.decode(big, raw=True)
    memo.decode(big, raw=True)
    assert big not in memo._memo


def _literal_no_index(fields: list[tuple[bytes, bytes]]) -> bytes:
    block = bytearray()
    for name, value in fields:
        block.append(0x00)
        block += hpack.hpack.encode_integer(len(name), 7) + name
        block += hpack.hpack.encode_integer(len(value), 7) + value
    return bytes(block)


def test_connection_codes_a_repeated_head_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's HPACK work for ten identical requests is two decodes, three encodes."""
    pair = Pair()
    pair.request(REQUEST)
    pair.exchange()  # the client's first block inserts; its next ones are indices
    server = pair.server._h2
    decodes: list[bytes] = []
    encodes: list[object] = []
    real_decode, real_encode = hpack.Decoder.decode, hpack.Encoder.encode

    def counted_decode(self: hpack.Decoder, data: bytes, raw: bool = False) -> Any:
        if self is server.decoder:
            decodes.append(data)
        return real_decode(self, data, raw)

    def counted_encode(self: hpack.Encoder, headers: Any, huffman: bool = True) -> bytes:
        if self is server.encoder:
            encodes.append(headers)
        return real_encode(self, headers, huffman)

    monkeypatch.setattr(hpack.Decoder, "decode", counted_decode)
    monkeypatch.setattr(hpack.Encoder, "encode", counted_encode)
    for _ in range(10):
        stream_id = pair.request(REQUEST)
        pair.exchange()
        pair.server.send_response_head(stream_id, 200, [(b"content-type", b"text/plain")])
        pair.server.send_body(stream_id, b"hi", end_stream=True)
        assert pair.exchange() == []
    # The first response inserts content-type; the next two are all indices, and the
    # second of them is remembered (likewise the second and third request blocks).
    assert (len(decodes), len(encodes)) == (2, 3)
    heads = [e for e in pair.client_events if type(e).__name__ == "ResponseReceived"]
    assert len(heads) == 10
    assert all(dict(e.headers)[b"content-type"] == b"text/plain" for e in heads)
