"""Hypothesis strategies that mutate valid requests into malformed and smuggling ones.

Each kind of defect is one mutation of a valid :class:`RawRequest`: the result
differs from a well-formed request in that one way only, so a server that
accepts it has exactly that bug. The table :data:`INVALID_REQUEST_KINDS` maps
each kind to the status a strict server answers (RFC 9110 / 9112), or ``None``
when the only right outcome is closing without a response.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from hypothesis import strategies as st

from .._config import Config
from . import _http_smuggling
from ._http_mutations import (
    Limits,
    Mutation,
    Mutator,
    find,
    index,
    insert,
    inside,
    rebuild,
    registrar,
    replace_value,
)
from ._http_requests import (
    STANDARD_METHODS,
    RawRequest,
    authorities,
    field_lines,
    http_requests,
)
from ._repr import CompactRepr

_HEAD_MUTATIONS: dict[str, Mutation] = {}
kind = registrar(_HEAD_MUTATIONS)


@dataclass(frozen=True, repr=False)
class RawInvalidRequest(CompactRepr):
    """A request with one defect.

    Attributes:
        data: The bytes to send (then EOF, for ``truncated``).
        kind: Which defect, a key of :data:`INVALID_REQUEST_KINDS`.
        expected_status: What a strict server answers before closing: 400,
            413, 414, 431, 501 or 505; ``None``: close without answering.
        base: The valid request it was made from.
    """

    data: bytes
    kind: str
    expected_status: int | None
    base: RawRequest = field(repr=False, compare=False)


# --- the head: line endings, field syntax ----------------------------------------------------


@kind("obs-fold", 400)
def _obs_fold(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    lines = field_lines(base.headers)
    continuation = draw(st.sampled_from([b" ", b"\t", b"  "])) + b"folded"
    lines.insert(index(draw, lines, extra=1), continuation)  # index 0: before the first field
    return rebuild(base, lines=lines)


@kind("bare-lf", 400)
def _bare_lf(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    lines = [base.head.split(b"\r\n", 1)[0], *field_lines(base.headers), b""]
    ends = draw(
        st.lists(st.sampled_from([b"\r\n", b"\n"]), min_size=len(lines), max_size=len(lines))
    )
    ends[index(draw, ends)] = b"\n"  # at least one bare LF
    return b"".join(line + end for line, end in zip(lines, ends, strict=True)) + base.framed_body


def _value_injection(inserted: st.SearchStrategy[bytes]) -> Mutator:
    def mutate(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
        fields = list(base.headers)
        i = index(draw, fields)
        fields[i] = (fields[i][0], inside(draw, fields[i][1], draw(inserted)))
        return rebuild(base, fields=fields)

    return mutate


kind("nul-in-header-value", 400)(_value_injection(st.just(b"\x00")))
kind("cr-in-header-value", 400)(_value_injection(st.just(b"\r")))
kind("lf-in-header-value", 400)(
    _value_injection(st.sampled_from([b"\n", b"\nX-Injected: 1", b"\nTransfer-Encoding: chunked"]))
)


@kind("whitespace-before-colon", 400)
def _space_before_colon(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    lines = field_lines(base.headers)
    i = index(draw, lines)
    name, value = base.headers[i]
    lines[i] = name + draw(st.sampled_from([b" ", b"\t", b"  "])) + b": " + value
    return rebuild(base, lines=lines)


@kind("invalid-header-name", 400)
def _invalid_name(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    bad = draw(
        st.sampled_from(
            [
                b"(",
                b")",
                b"<",
                b"@",
                b",",
                b";",
                b"\\",
                b'"',
                b"/",
                b"[",
                b"?",
                b"=",
                b"{",
                b" ",
                b"\x7f",
                "é".encode(),
            ]
        )
    )
    # Never at the start: a line starting with a space is obs-fold, a kind of its own
    # (h11 even accepts it, as a continuation of the previous header).
    name = (
        b"" if draw(st.booleans()) and draw(st.booleans()) else b"X" + inside(draw, b"-Name", bad)
    )
    return rebuild(base, fields=insert(draw, base.headers, (name, b"value")))


# --- limits ----------------------------------------------------------------------------------


@kind("oversized-head", 431)
def _oversized_head(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    # Over the limit by at least 5 bytes, so it is too big however the final CRLFs are counted.
    size = limits.max_header_size + 5 + draw(st.integers(0, 64))
    fields = insert(draw, base.headers, (b"X-Pad", b""))
    pad = max(0, size - len(rebuild(base, fields=fields, body=b"")))
    i = find(tuple(fields), b"x-pad")
    fields[i] = (b"X-Pad", b"a" * pad)
    return rebuild(base, fields=fields)


@kind("too-many-headers", 431)
def _too_many_headers(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    missing = limits.max_header_count + 1 - len(base.headers) + draw(st.integers(0, 5))
    fields = list(base.headers)
    for n in range(max(1, missing)):
        fields.insert(index(draw, fields, extra=1), (b"X-Filler-%d" % n, b"%d" % n))
    return rebuild(base, fields=fields)


@kind("target-too-long", 414)
def _long_target(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    length = limits.max_target_length + 1 + draw(st.integers(0, 64))
    prefix = base.raw_path if base.raw_path.startswith(b"/") else b"/"
    return rebuild(base, target=(prefix + b"/" + b"a" * length)[:length])


# --- the request line ------------------------------------------------------------------------


@kind("invalid-method", 400)
def _invalid_method(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    bad = draw(
        st.sampled_from([b"(", b")", b"/", b"@", b'"', b",", b"\x7f", b"\x00", "É".encode()])
    )
    method = b"" if draw(st.integers(0, 7)) == 0 else inside(draw, base.method.encode(), bad)
    return rebuild(base, method=method)


@kind("malformed-request-line", 400)
def _malformed_request_line(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    method, target = base.method.encode(), base.target.encode()
    line = draw(
        st.sampled_from(
            [
                method + b"  " + target + b" HTTP/1.1",
                method + b" " + target + b"  HTTP/1.1",
                method + b"\t" + target + b" HTTP/1.1",
                method + b" " + target + b"\tHTTP/1.1",
                method + b" " + target + b" HTTP/1.1 ",
                b" " + method + b" " + target + b" HTTP/1.1",
                method + b" " + target,
                method + b" HTTP/1.1",
                method + b" " + target + b" http/1.1",
                method + b" " + target + b" HTTP/1.1.1",
                method + b" " + target + b" HTTP/11",
                method + b" " + target + b" HTTP/10.0",
                method + b" " + target + b" HTTP/1",
                method + b" " + target + b" HTTP/1.1 extra",
            ]
        )
    )
    head = b"\r\n".join([line, *field_lines(base.headers), b""]) + b"\r\n"
    return head + base.framed_body


@kind("unsupported-version", 505)
def _unsupported_version(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    version = draw(st.sampled_from([b"2.0", b"3.0", b"0.9", b"2.1", b"9.9"]))
    return rebuild(base, version=version)


@kind("connect", 501, framings=("none",))
def _connect(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    authority = draw(authorities.filter(lambda a: ":" in a.rpartition("]")[2])).encode()
    fields = replace_value(base.headers, b"host", authority)
    return rebuild(base, method=b"CONNECT", target=authority, fields=fields)


@kind("authority-form", 400)
def _authority_form(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    return rebuild(base, target=draw(authorities).encode())


@kind("asterisk-form", 400, methods=tuple(m for m in STANDARD_METHODS if m != "OPTIONS"))
def _asterisk_form(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    return rebuild(base, target=b"*")


@kind("invalid-target", 400)
def _invalid_target(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    path = base.raw_path if base.raw_path.startswith(b"/") else b"/"
    # A fragment, raw non-ASCII and control bytes are never valid in a request target.
    # Visible ASCII outside RFC 3986 ('"', "<", "{", "|", ...) is left out: browsers send
    # some of it unencoded in query strings, so refusing it is a policy, not a rule.
    bad = draw(st.sampled_from([b"#frag", b"#", "é".encode(), b"\xff", b"\x7f"]))
    if draw(st.integers(0, 7)) == 0:
        return rebuild(base, target=b"relative" + path)  # no leading slash
    return rebuild(base, target=inside(draw, path, bad))


# --- Host ------------------------------------------------------------------------------------


@kind("missing-host", 400)
def _missing_host(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    fields = list(base.headers)
    del fields[find(base.headers, b"host")]
    return rebuild(base, fields=fields)


@kind("duplicate-host", 400)
def _duplicate_host(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    host = base.headers[find(base.headers, b"host")][1]
    other = draw(st.sampled_from([host, b"evil.example", host + b".evil.example"]))
    return rebuild(base, fields=insert(draw, base.headers, (b"Host", other)))


@kind("invalid-host", 400)
def _invalid_host(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    bad = draw(st.sampled_from([b"a b", b"a/b", b"user@a", b"[::1", b"a:x", b"a\\b"]))
    return rebuild(base, fields=replace_value(base.headers, b"host", bad))


# --- incomplete and too large ----------------------------------------------------------------


@kind("truncated", None)
def _truncated(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    return base.head[: draw(st.integers(1, len(base.head) - 1))]


@kind("body-too-large", 413, framings=("content-length",))
def _body_too_large(draw: st.DrawFn, base: RawRequest, limits: Limits) -> bytes:
    assert limits.max_body_size is not None
    body = b"x" * (limits.max_body_size + 1 + draw(st.integers(0, 64)))
    fields = replace_value(base.headers, b"content-length", b"%d" % len(body))
    return rebuild(base, fields=fields, body=body)


#: Every kind of defect, with the status a strict server answers (``None``: just close).
#: ``body-too-large`` is drawn only when :func:`invalid_requests` gets a ``max_body_size``.
_MUTATIONS = {**_http_smuggling.MUTATIONS, **_HEAD_MUTATIONS}

INVALID_REQUEST_KINDS: Mapping[str, int | None] = MappingProxyType(
    {name: mutation.status for name, mutation in _MUTATIONS.items()}
)


def invalid_requests(
    *,
    kinds: Sequence[str] | None = None,
    max_header_size: int = Config.max_header_size,
    max_header_count: int = Config.max_header_count,
    max_target_length: int = Config.max_target_length,
    max_body_size: int | None = None,
) -> st.SearchStrategy[RawInvalidRequest]:
    """Malformed and request-smuggling requests, each a valid request with one defect.

    The kinds (see :data:`INVALID_REQUEST_KINDS`) cover Content-Length and
    Transfer-Encoding conflicts and duplicates, bad chunk sizes and chunk
    terminators, obs-fold, bare LF, NUL/CR/LF in values, whitespace before the
    colon, bad names, methods, request lines, versions and targets, CONNECT and
    the authority and asterisk forms, missing or repeated Host, oversized
    heads, too many fields, over-long targets, truncation, and (with
    ``max_body_size``) too large bodies. The limits default to those of
    :class:`trio_asgi.Config`; the server under test must use the same ones
    (and ``max_target_length`` well below ``max_header_size``, as by default).

    Args:
        kinds: The kinds to draw from (default: all that apply).
        max_header_size: The server's limit on the head, for ``oversized-head``.
        max_header_count: The server's limit on fields, for ``too-many-headers``.
        max_target_length: The server's limit on the target, for ``target-too-long``.
        max_body_size: The server's body limit; enables ``body-too-large``.

    Raises:
        ValueError: An unknown kind, or ``body-too-large`` without ``max_body_size``.

    Example:
        >>> from hypothesis import given
        >>> @given(invalid_requests(kinds=["cl-and-te", "obs-fold"]))
        ... def test_answer(request):
        ...     assert request.expected_status == 400
        >>> test_answer()
    """
    limits = Limits(max_header_size, max_header_count, max_target_length, max_body_size)
    if kinds is None:
        kinds = [k for k in _MUTATIONS if k != "body-too-large" or max_body_size is not None]
    for kind in kinds:
        if kind not in _MUTATIONS:
            raise ValueError(f"unknown kind of invalid request: {kind!r}")
        if kind == "body-too-large" and max_body_size is None:
            raise ValueError("body-too-large needs max_body_size")
    return st.sampled_from(list(kinds)).flatmap(lambda kind: _mutated(kind, limits))


@functools.lru_cache
def _mutated(kind: str, limits: Limits) -> st.SearchStrategy[RawInvalidRequest]:
    """Requests with the defect ``kind``, built once per kind and limits."""
    mutation = _MUTATIONS[kind]
    methods = None if mutation.methods is None else st.sampled_from(mutation.methods)
    bases = http_requests(methods=methods, framings=mutation.framings, max_body_size=256)

    @st.composite
    def mutate(draw: st.DrawFn) -> RawInvalidRequest:
        base = draw(bases)
        data = mutation.mutate(draw, base, limits)
        return RawInvalidRequest(data=data, kind=kind, expected_status=mutation.status, base=base)

    return mutate()
