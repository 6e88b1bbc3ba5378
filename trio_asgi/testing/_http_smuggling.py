"""Mutations of the body framing: the request-smuggling classes.

Content-Length and Transfer-Encoding together, duplicate and conflicting
lengths, unknown codings, and malformed chunked bodies (sizes and terminators).
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

from ._http_mutations import (
    Limits,
    Mutation,
    Mutator,
    index,
    insert,
    rebuild,
    registrar,
    replace_value,
)
from ._http_requests import RawRequest, cut

MUTATIONS: dict[str, Mutation] = {}
kind = registrar(MUTATIONS)


# --- framing: Content-Length and Transfer-Encoding ---------------------------------------------


@kind("cl-and-te", 400, framings=("chunked",))
def _cl_and_te(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    length = draw(st.sampled_from([len(base.body), len(base.framed_body), 0]))
    return rebuild(base, fields=insert(draw, base.headers, (b"Content-Length", b"%d" % length)))


@kind("duplicate-content-length", 400, framings=("content-length",))
def _duplicate_cl(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    length = b"%d" % len(base.body)
    if draw(st.booleans()):
        listed = length + b", " + length
        return rebuild(base, fields=replace_value(base.headers, b"content-length", listed))
    return rebuild(base, fields=insert(draw, base.headers, (b"Content-Length", length)))


@kind("conflicting-content-length", 400, framings=("content-length",))
def _conflicting_cl(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    length = len(base.body)
    other = b"%d" % draw(st.integers(0, length + 10).filter(lambda n: n != length))
    if draw(st.booleans()):
        listed = b"%d, " % length + other
        return rebuild(base, fields=replace_value(base.headers, b"content-length", listed))
    return rebuild(base, fields=insert(draw, base.headers, (b"Content-Length", other)))


@kind("invalid-content-length", 400, framings=("content-length",))
def _invalid_cl(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    n = len(base.body)
    bad = draw(
        st.sampled_from(
            [
                b"+%d" % n,
                b"-%d" % n,
                b"%d.0" % n,
                b"0x%x" % n,
                b"%d %d" % (n, n),
                b"",
                b"%d;" % n,
                b"1e3",
                "\u0661".encode(),
                b"%da" % n,
            ]
        )
    )
    return rebuild(base, fields=replace_value(base.headers, b"content-length", bad))


@kind("unknown-transfer-coding", 501, framings=("chunked",))
def _unknown_coding(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    coding = draw(
        st.sampled_from(
            [
                b"gzip, chunked",
                b"deflate, chunked",
                b"identity",
                b"xchunked",
                b"compress",
                b"chunked-x",
            ]
        )
    )
    return rebuild(base, fields=replace_value(base.headers, b"transfer-encoding", coding))


@kind("bad-transfer-encoding", 400, framings=("chunked",))
def _bad_te(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    variant = draw(st.sampled_from(["chunked twice", "chunked not last", "two fields"]))
    if variant == "two fields":
        return rebuild(base, fields=insert(draw, base.headers, (b"Transfer-Encoding", b"chunked")))
    coding = b"chunked, chunked" if variant == "chunked twice" else b"chunked, gzip"
    return rebuild(base, fields=replace_value(base.headers, b"transfer-encoding", coding))


# --- chunked bodies --------------------------------------------------------------------------


class _ChunkedWire:
    """A chunked body as editable pieces: per chunk the size line, its end, the data, its end."""

    def __init__(self, draw: st.DrawFn, base: RawRequest) -> None:
        body = base.body or draw(st.binary(min_size=1, max_size=8))
        cuts = draw(st.sets(st.integers(1, max(1, len(body) - 1)), max_size=3))
        self.data = [chunk for chunk in cut(body, sorted(cuts)) if chunk]
        self.sizes = [b"%x" % len(chunk) for chunk in self.data] + [b"0"]
        self.size_ends = [b"\r\n"] * len(self.sizes)
        self.data_ends = [b"\r\n"] * len(self.data)

    def join(self) -> bytes:
        out = b""
        for i, chunk in enumerate(self.data):
            out += self.sizes[i] + self.size_ends[i] + chunk + self.data_ends[i]
        return out + self.sizes[-1] + self.size_ends[-1] + b"\r\n"


def _chunk_size_mutation(make_bad: Callable[[st.DrawFn, bytes], bytes]) -> Mutator:
    def mutate(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
        wire = _ChunkedWire(draw, base)
        i = index(draw, wire.sizes)
        wire.sizes[i] = make_bad(draw, wire.sizes[i])
        return rebuild(base, body=wire.join())

    return mutate


kind("chunk-size-invalid", 400, framings=("chunked",))(
    _chunk_size_mutation(
        lambda draw, size: draw(
            st.sampled_from([b"g", size + b"g", b"0x" + size, b"", b"+" + size, size + b".0"])
        )
    )
)
kind("chunk-size-negative", 400, framings=("chunked",))(
    _chunk_size_mutation(lambda draw, size: b"-" + size)
)
kind("chunk-size-too-long", 400, framings=("chunked",))(
    _chunk_size_mutation(
        lambda draw, size: draw(
            st.sampled_from(
                [b"0" * (draw(st.integers(17, 24)) - len(size)) + size, b"1" + b"0" * 16]
            )
        )
    )
)
kind("chunk-size-whitespace", 400, framings=("chunked",))(
    _chunk_size_mutation(
        lambda draw, size: draw(
            st.sampled_from([size + b" ", size + b"\t", size + b"  ", b" " + size])
        )
    )
)


@kind("chunk-missing-crlf", 400, framings=("chunked",))
def _chunk_missing_crlf(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    wire = _ChunkedWire(draw, base)
    i = index(draw, wire.data)
    wire.data_ends[i] = draw(st.sampled_from([b"", b"XX", b"\r", b"\n\r", b"  "]))
    return rebuild(base, body=wire.join())


@kind("chunk-bare-lf", 400, framings=("chunked",))
def _chunk_bare_lf(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    wire = _ChunkedWire(draw, base)
    if draw(st.booleans()):
        wire.data_ends[index(draw, wire.data)] = b"\n"
    else:
        wire.size_ends[index(draw, wire.sizes)] = b"\n"
    return rebuild(base, body=wire.join())
