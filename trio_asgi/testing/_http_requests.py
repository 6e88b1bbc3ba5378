"""Hypothesis strategies for valid HTTP/1.1 requests, pipelines and splits of bytes.

Every request is drawn as parts (method, target, header fields, body, framing)
and serialised with drawn wire variations that do not change its meaning:
header-name case, optional whitespace around values, chunk sizes with leading
zeros and either hex case, chunk extensions and trailers. The parts are kept
next to the bytes, so a test can compare what a server parsed with what was
meant.
"""

from __future__ import annotations

import functools
import itertools
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias, TypeVar

from hypothesis import strategies as st

from ._http_routes import (
    Choices,
    NamedValues,
    as_strategy,
    draw_header_values,
    draw_path,
    draw_query,
)
from ._repr import CompactRepr

_T = TypeVar("_T", bound=str)

Framing: TypeAlias = Literal["content-length", "chunked", "none"]
TargetForm: TypeAlias = Literal["origin", "absolute", "asterisk"]
Headers: TypeAlias = tuple[tuple[bytes, bytes], ...]

FRAMINGS: tuple[Framing, ...] = ("content-length", "chunked", "none")
TARGET_FORMS: tuple[TargetForm, ...] = ("origin", "absolute", "asterisk")
STANDARD_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")

TCHARS = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters
_UNRESERVED = string.ascii_letters + string.digits + "-._~"
_PCHARS = _UNRESERVED + "!$&'()*+,;=" + ":@"
_QUERY_CHARS = _PCHARS + "/?"
_VCHARS = bytes(range(0x21, 0x7F))
_OBS_TEXT = bytes(range(0x80, 0x100))
_OWS = (b"", b" ", b"\t", b"  ", b" \t")

#: Header names the generator never draws at random: they change framing,
#: routing or the connection, so each appears only where a strategy puts it.
RESERVED_NAMES = frozenset(
    {
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"upgrade",
        b"expect",
        b"te",
        b"trailer",
        b"keep-alive",
        b"proxy-connection",
        b"http2-settings",
    }
)
_COMMON_NAMES = (
    b"accept",
    b"accept-encoding",
    b"accept-language",
    b"authorization",
    b"cache-control",
    b"content-type",
    b"cookie",
    b"if-none-match",
    b"referer",
    b"user-agent",
    b"x-request-id",
)


@dataclass(frozen=True, repr=False)
class RawRequest(CompactRepr):
    """A valid HTTP/1.1 request: its parts and its bytes.

    Attributes:
        method: The method token, as sent.
        target: The request target as sent (ASCII; non-ASCII is percent-encoded).
        target_form: ``"origin"`` (``/p?q``), ``"absolute"`` (``http://h/p?q``)
            or ``"asterisk"`` (``*``, with OPTIONS only).
        headers: The header fields in wire order, names in their sent case,
            values without the optional whitespace around them. Includes
            ``Host`` and the framing header.
        body: The body after de-chunking.
        framing: ``"content-length"``, ``"chunked"`` or ``"none"`` (no body).
        trailers: The trailer fields of a chunked body.
        head: The request line, the header lines and the blank line.
        framed_body: The body as sent (chunked encoding included).
    """

    method: str
    target: str
    target_form: TargetForm
    headers: Headers
    body: bytes
    framing: Framing
    trailers: Headers
    head: bytes
    framed_body: bytes

    @property
    def data(self) -> bytes:
        """The whole request as it goes on the wire."""
        return self.head + self.framed_body

    @property
    def raw_path(self) -> bytes:
        """The path part of the target, still percent-encoded (``b"*"`` for asterisk-form)."""
        path = self.target
        if self.target_form == "absolute":
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        return path.partition("?")[0].encode("ascii")

    @property
    def query_string(self) -> bytes:
        """The query after ``?``, still percent-encoded; ``b""`` when there is none."""
        return self.target.partition("?")[2].encode("ascii")


def serialize_head(
    method: bytes, target: bytes, version: bytes, lines: Sequence[bytes], *, eol: bytes = b"\r\n"
) -> bytes:
    """The request line, the given header lines and the blank line, each ended by ``eol``."""
    return eol.join([b" ".join((method, target, b"HTTP/" + version)), *lines, b""]) + eol


def field_lines(fields: Sequence[tuple[bytes, bytes]], sep: bytes = b": ") -> list[bytes]:
    """Header lines ``name: value`` for each field, without line endings."""
    return [name + sep + value for name, value in fields]


def chunked_body(
    chunks: Sequence[bytes],
    size_lines: Sequence[bytes] | None = None,
    last_line: bytes = b"0",
    trailer_lines: Sequence[bytes] = (),
) -> bytes:
    """A chunked body; ``size_lines`` (default: plain hex sizes) may carry extensions."""
    if size_lines is None:
        size_lines = [b"%x" % len(chunk) for chunk in chunks]
    parts = [
        line + b"\r\n" + chunk + b"\r\n" for line, chunk in zip(size_lines, chunks, strict=True)
    ]
    parts.append(last_line + b"\r\n")
    parts.extend(line + b"\r\n" for line in trailer_lines)
    parts.append(b"\r\n")
    return b"".join(parts)


def cut(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """Split ``data`` at the sorted positions ``cuts`` (each strictly inside ``data``)."""
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# --- parts ------------------------------------------------------------------------------------
# Strategies are built once, at import: building them inside a draw costs more than drawing.


def tokens(min_size: int = 1, max_size: int = 12) -> st.SearchStrategy[str]:
    """RFC 9110 tokens (method and header-name syntax)."""
    return st.text(alphabet=TCHARS, min_size=min_size, max_size=max_size)


_CASE_STYLES = st.sampled_from(["lower", "title", "upper", "random"])
_FLIPS = st.integers(min_value=0)


def _mixed_case(draw: st.DrawFn, text: bytes) -> bytes:
    """``text`` in a drawn letter case (header names and codings are case-insensitive)."""
    style = draw(_CASE_STYLES)
    if style == "lower":
        return text.lower()
    if style == "upper":
        return text.upper()
    if style == "title":
        return b"-".join(part.capitalize() for part in text.split(b"-"))
    flips = draw(_FLIPS)
    return b"".join(
        bytes([c]).upper() if flips >> i & 1 else bytes([c]).lower() for i, c in enumerate(text)
    )


def _percent_encode(data: bytes, upper: bool) -> str:
    return "".join(f"%{b:02X}" if upper else f"%{b:02x}" for b in data)


def _uri_chars(literal: str) -> st.SearchStrategy[str]:
    """Runs of URI characters: literals, percent-encoded UTF-8 (often non-ASCII) or raw bytes."""
    piece = st.one_of(
        st.text(alphabet=literal, min_size=1, max_size=6),
        st.builds(
            _percent_encode,
            st.text(min_size=1, max_size=2).map(lambda t: t.encode("utf-8", "surrogatepass")),
            st.booleans(),
        ),
        st.builds(_percent_encode, st.binary(min_size=1, max_size=2), st.booleans()),
    )
    return st.lists(piece, max_size=4).map("".join)


_SEGMENTS = st.lists(_uri_chars(_PCHARS), max_size=5)
_QUERIES = st.none() | _uri_chars(_QUERY_CHARS)


@st.composite
def _origin_targets(draw: st.DrawFn) -> str:
    target = "/" + "/".join(draw(_SEGMENTS))
    query = draw(_QUERIES)
    return target if query is None else target + "?" + query


#: Origin-form targets: ``/`` segments, percent-encoding and an optional query.
origin_targets: st.SearchStrategy[str] = _origin_targets()

#: Host names: common ones, IP literals, IDNA, and drawn DNS names.
hosts: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(["localhost", "example.com", "127.0.0.1", "[::1]", "xn--caf-dma.example"]),
    st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]{2,6})?\Z"),
)
#: ``host`` or ``host:port``, as in ``Host`` and absolute-form targets.
authorities: st.SearchStrategy[str] = st.tuples(hosts, st.none() | st.integers(1, 65535)).map(
    lambda t: t[0] if t[1] is None else f"{t[0]}:{t[1]}"
)

_VISIBLE_WORDS = st.binary(min_size=1, max_size=10).map(
    lambda raw: bytes(_VCHARS[b % len(_VCHARS)] for b in raw)
)
_OBS_TEXT_WORDS = st.binary(min_size=1, max_size=3).map(
    lambda raw: bytes(_OBS_TEXT[b % len(_OBS_TEXT)] for b in raw)
)
_SPACED_WORDS = st.lists(
    st.tuples(
        st.sampled_from([b" ", b"\t", b"  "]),
        st.one_of(_VISIBLE_WORDS, _VISIBLE_WORDS, _VISIBLE_WORDS, _OBS_TEXT_WORDS),
    ),
    max_size=4,
)

#: Header field values: visible characters and obs-text, inner spaces and tabs only.
field_values: st.SearchStrategy[bytes] = _SPACED_WORDS.map(
    lambda words: b"".join(sp + w for sp, w in words).strip(b" \t")
)

#: Header field names: common ones and drawn tokens, never one that changes framing,
#: routing or the connection (:data:`RESERVED_NAMES`).
header_names: st.SearchStrategy[bytes] = st.one_of(
    st.sampled_from(_COMMON_NAMES),
    tokens().map(lambda t: t.encode("ascii")),
).filter(lambda name: name.lower() not in RESERVED_NAMES)
_TRAILER_NAMES = tokens().map(lambda t: b"x-" + t.encode("ascii"))
_OWS_CHOICES = st.sampled_from(_OWS)


@st.composite
def _fields(draw: st.DrawFn, names: st.SearchStrategy[bytes]) -> tuple[bytes, bytes, bytes]:
    """A field as (name, value, wire line), the line with drawn whitespace around the value."""
    name = _mixed_case(draw, draw(names))
    value = draw(field_values)
    line = name + b":" + draw(_OWS_CHOICES) + value + draw(_OWS_CHOICES)
    return name, value, line


_EXTRA_FIELDS = _fields(header_names)
_TRAILER_FIELDS = st.lists(_fields(_TRAILER_NAMES), max_size=3)


def _with_ows(draw: st.DrawFn, name: bytes, value: bytes) -> tuple[bytes, bytes, bytes]:
    name = _mixed_case(draw, name)
    return name, value, name + b":" + draw(_OWS_CHOICES) + value


@functools.lru_cache
def bodies(max_size: int = 65536) -> st.SearchStrategy[bytes]:
    """Bodies: mostly small drawn bytes, sometimes a large repeated pattern."""
    small = st.binary(max_size=min(max_size, 512))
    if max_size <= 512:
        return small
    large = st.builds(
        lambda pattern, n: (pattern * (n // len(pattern) + 1))[:n],
        st.binary(min_size=1, max_size=16),
        st.integers(513, max_size),
    )
    return st.one_of(small, small, small, large)


_CHUNK_EXTENSIONS = st.lists(
    st.tuples(
        tokens(max_size=6),
        st.none()
        | tokens(max_size=6)
        | st.text(alphabet=string.ascii_letters + " ,;=", max_size=8).map(lambda s: f'"{s}"'),
    ),
    max_size=2,
)
_SIZE_STYLES = st.tuples(st.booleans(), st.integers(0, 3))
_CHUNK_SIZES = st.lists(st.integers(1, 16) | st.integers(1, 8192), max_size=12)


def _size_line(draw: st.DrawFn, size: int) -> bytes:
    """A chunk-size line (without CRLF): either hex case, leading zeros, extensions."""
    upper, zeros = draw(_SIZE_STYLES)
    line = b"0" * zeros + (b"%X" if upper else b"%x") % size
    for name, value in draw(_CHUNK_EXTENSIONS):
        line += b";" + name.encode() + (b"" if value is None else b"=" + value.encode())
    return line


def _chunked(draw: st.DrawFn, body: bytes) -> tuple[bytes, Headers]:
    """Chunk ``body`` in drawn sizes; return the framed body and the trailer fields."""
    chunks, rest = [], body
    for size in draw(_CHUNK_SIZES):
        if not rest:
            break
        chunks.append(rest[:size])
        rest = rest[size:]
    if rest:
        chunks.append(rest)
    size_lines = [_size_line(draw, len(chunk)) for chunk in chunks]
    last_line = _size_line(draw, 0)
    trailer_fields = draw(_TRAILER_FIELDS)
    framed = chunked_body(chunks, size_lines, last_line, [line for _, _, line in trailer_fields])
    return framed, tuple((name, value) for name, value, _ in trailer_fields)


_SCHEMES = st.sampled_from(["http", "https"])


_SAMPLED: dict[tuple[str, ...], st.SearchStrategy[str]] = {}


def _sampled(choices: tuple[_T, ...]) -> st.SearchStrategy[_T]:
    """``st.sampled_from(choices)``, built once per tuple of choices."""
    if choices not in _SAMPLED:
        _SAMPLED[choices] = st.sampled_from(choices)
    return _SAMPLED[choices]  # type: ignore[return-value]


@functools.lru_cache
def _field_lists(max_size: int) -> st.SearchStrategy[list[tuple[bytes, bytes, bytes]]]:
    return st.lists(_EXTRA_FIELDS, max_size=max_size)


_DEFAULT_METHODS = st.sampled_from(STANDARD_METHODS) | st.text(
    alphabet=string.ascii_uppercase + "-_", min_size=1, max_size=10
).filter(lambda m: m != "CONNECT")


# --- requests ---------------------------------------------------------------------------------


@st.composite
def http_requests(
    draw: st.DrawFn,
    *,
    paths: Choices | None = None,
    methods: Choices | None = None,
    query: NamedValues | st.SearchStrategy[str] | None = None,
    headers: NamedValues | None = None,
    body: st.SearchStrategy[bytes] | None = None,
    framings: Sequence[Framing] = FRAMINGS,
    target_forms: Sequence[TargetForm] = TARGET_FORMS,
    max_body_size: int = 65536,
    max_headers: int = 8,
) -> RawRequest:
    """Valid HTTP/1.1 requests, with their parts kept for comparison.

    Without ``paths``, targets are random (an app's routes are hit by naming them).
    The wire varies as clients vary it, meaning unchanged: header case, whitespace,
    order, hex case, query order, absolute form, chunked bodies with extensions and
    trailers. One ``Host``; never a close, an upgrade, ``100-continue`` or CONNECT.

    Args:
        paths: Paths to draw from, not percent-encoded (a sequence or a strategy).
        methods: Methods to draw from (default: standard ones and extension tokens).
        query: Parameter names to values or strategies (a drawn ``None`` leaves one
            out), or a strategy of encoded query strings. Default: random, or none
            with ``paths``.
        headers: Field names to values or strategies (``None`` leaves one out).
        body: The body strategy (default: :func:`bodies`); given, there is always one.
        framings: The body framings to draw from.
        target_forms: The target forms (asterisk-form: OPTIONS to random targets only).
        max_body_size: The largest default body.
        max_headers: The most random extra fields besides the named ones.

    Example:
        >>> from hypothesis import given, strategies as st
        >>> page = st.integers(0, 9)
        >>> @given(http_requests(paths=["/items"], methods=["GET"], query={"page": page}))
        ... def test_routes(request):
        ...     assert request.raw_path == b"/items" and request.query_string.startswith(b"page=")
        >>> test_routes()
    """
    method = draw(_DEFAULT_METHODS if methods is None else as_strategy(methods))
    random_target = paths is None
    allowed = [
        f for f in target_forms if f != "asterisk" or (method == "OPTIONS" and random_target)
    ]
    options: tuple[TargetForm, ...] = tuple(allowed) or ("origin",)
    form = draw(_sampled(options))
    authority = draw(authorities)
    target = _draw_target(draw, form, authority, paths, query)
    if body is not None and len(framings) > 1:
        framings = [f for f in framings if f != "none"]
    framing = draw(_sampled(tuple(framings)))
    content = b"" if framing == "none" else draw(bodies(max_body_size) if body is None else body)
    named = draw_header_values(draw, headers or {})
    taken = {name for name, _ in named}
    fields = [f for f in draw(_field_lists(max_headers)) if f[0].lower() not in taken]
    for name, value in named:
        fields.insert(draw(st.integers(0, len(fields))), _with_ows(draw, name, value))
    return _assemble(draw, method, target, form, authority, fields, content, framing)


def _draw_target(
    draw: st.DrawFn,
    form: TargetForm,
    authority: str,
    paths: Choices | None,
    query: NamedValues | st.SearchStrategy[str] | None,
) -> str:
    """The request target: a named path or a random one, with its query, in ``form``."""
    if form == "asterisk":
        return "*"
    if paths is None and query is None:
        target = draw(origin_targets)
    else:
        target = "/" + "/".join(draw(_SEGMENTS)) if paths is None else draw_path(draw, paths)
        drawn_query = None if query is None else draw_query(draw, query)
        if drawn_query:
            target += "?" + drawn_query
    return draw(_SCHEMES) + "://" + authority + target if form == "absolute" else target


def _assemble(
    draw: st.DrawFn,
    method: str,
    target: str,
    form: TargetForm,
    authority: str,
    fields: list[tuple[bytes, bytes, bytes]],
    body: bytes,
    framing: Framing,
) -> RawRequest:
    """Add ``Host`` and the framing field at drawn places, frame the body, serialise."""
    trailers: Headers = ()
    fields.insert(draw(st.integers(0, len(fields))), _with_ows(draw, b"host", authority.encode()))
    if framing == "chunked":
        framed_body, trailers = _chunked(draw, body)
        coding = _mixed_case(draw, b"chunked")
        framing_field = _with_ows(draw, b"transfer-encoding", coding)
    else:
        framed_body = body
        framing_field = _with_ows(draw, b"content-length", b"%d" % len(body))
    if framing != "none":
        fields.insert(draw(st.integers(0, len(fields))), framing_field)
    head = serialize_head(
        method.encode("ascii"), target.encode("ascii"), b"1.1", [line for _, _, line in fields]
    )
    return RawRequest(
        method=method,
        target=target,
        target_form=form,
        headers=tuple((name, value) for name, value, _ in fields),
        body=body,
        framing=framing,
        trailers=trailers,
        head=head,
        framed_body=framed_body,
    )


def pipelines(
    *, max_requests: int = 4, requests: st.SearchStrategy[RawRequest] | None = None
) -> st.SearchStrategy[list[RawRequest]]:
    """Lists of 1 to ``max_requests`` valid requests, meant to be sent back to back.

    Args:
        max_requests: The most requests in one pipeline.
        requests: The strategy for each request (default: :func:`http_requests`).

    Example:
        >>> from hypothesis import given
        >>> @given(pipelines(max_requests=3))
        ... def test_concatenated(requests):
        ...     data = b"".join(r.data for r in requests)
        ...     assert data.count(b"HTTP/1.1\\r\\n") >= len(requests)
        >>> test_concatenated()
    """
    return st.lists(requests or http_requests(), min_size=1, max_size=max_requests)


def splits(data: bytes, *, max_chunks: int | None = None) -> st.SearchStrategy[list[bytes]]:
    """Ways to cut ``data`` into non-empty chunks that concatenate back to ``data``.

    Cut points are arbitrary, so chunk boundaries fall inside request lines,
    CRLFs, chunk-size lines and UTF-8 sequences; one-byte-at-a-time delivery is
    one of the draws. Empty ``data`` gives ``[]``.

    Args:
        data: The bytes to split.
        max_chunks: The most chunks (``None``: up to one per byte).

    Example:
        >>> from hypothesis import given
        >>> @given(splits(b"GET / HTTP/1.1\\r\\n"))
        ... def test_rejoins(chunks):
        ...     assert b"".join(chunks) == b"GET / HTTP/1.1\\r\\n"
        ...     assert all(chunks)
        >>> test_rejoins()
    """
    if len(data) <= 1:
        return st.just([data] if data else [])
    limit = len(data) if max_chunks is None else max(1, min(max_chunks, len(data)))
    cuts = st.lists(st.integers(1, len(data) - 1), unique=True, max_size=limit - 1)
    options = [cuts.map(lambda points: cut(data, sorted(points)))]
    if limit == len(data):
        options.append(st.just([data[i : i + 1] for i in range(len(data))]))
    return st.one_of(*options)
