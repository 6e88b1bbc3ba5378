"""Our head parser is h11's, answer for answer: the differential proof.

Two :class:`HTTP11Connection` objects, one parsing heads with our parser and one with
h11's reader (the reference, :mod:`trio_asgi._protocol._h11_head`), are fed the same
bytes in the same pieces. Every event they give must be the same: the same parsed
request on valid input, the same status on invalid input, the same ``NEED_DATA`` on
prefixes. The inputs are valid requests and pipelines, every invalid kind of
``trio_asgi.testing.strategies``, mutations of both (a byte changed, inserted or
removed), truncations, and arbitrary bytes.
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from trio_asgi._protocol._h11_head import (
    HeadParser,
    parse_head_h11,
    parse_head_h11_public,
    selected_parser,
)
from trio_asgi._protocol._head_parser import HeadError, ParsedHead, parse_head
from trio_asgi._protocol._http11 import (
    NEED_DATA,
    PAUSED,
    BadRequest,
    ClientEOF,
    HTTP11Connection,
    Limits,
)
from trio_asgi._protocol._response import DefaultHeaders
from trio_asgi.testing.strategies import (
    INVALID_REQUEST_KINDS,
    http_requests,
    invalid_requests,
    pipelines,
    splits,
)

_DEFAULTS = DefaultHeaders(server_header=False, date_header=False, extra=())
#: Small limits, so that mutated input reaches the 414 and 431 paths too.
_LIMITS = Limits(max_header_size=2048, max_header_count=20, max_target_length=512)


def _events(parse: HeadParser, chunks: list[bytes], eof: bool) -> list[object]:
    """Everything a connection says about ``chunks``, read as the I/O layer reads them."""
    conn = HTTP11Connection(_LIMITS, _DEFAULTS, parse_head=parse)
    said: list[object] = []
    for chunk in [*chunks, b""] if eof else chunks:
        conn.receive_data(chunk)
        while True:
            event = conn.next_event()
            if event is PAUSED:
                said.append("PAUSED")
                # Answer, as the app would, and go on to the next request if there is one.
                conn.response_head(200, [(b"content-length", b"0")], close=False)
                conn.response_body(b"", final=True)
                if not conn.reusable:
                    return said
                conn.start_next_cycle()
                continue
            if event is NEED_DATA:
                said.append("NEED_DATA")
                break
            said.append(asdict(event) if is_dataclass(event) else event)
            if type(event) in (BadRequest, ClientEOF):
                # The connection is done; only the status (not h11's wording) must agree.
                if type(event) is BadRequest:
                    said[-1] = ("BadRequest", event.status)
                return said
    return said


def _same_answers(chunks: list[bytes], eof: bool = False) -> None:
    ours = _events(parse_head, chunks, eof)
    assert ours == _events(parse_head_h11, chunks, eof)


# --- valid input ----------------------------------------------------------------------------


@given(pipelines(max_requests=3), st.data())
def test_valid_pipelines_in_any_pieces(requests: list, data: st.DataObject) -> None:
    wire = b"".join(request.data for request in requests)
    _same_answers(data.draw(splits(wire, max_chunks=8)), eof=data.draw(st.booleans()))


@given(http_requests(max_body_size=64), st.data())
def test_every_prefix_of_a_valid_request(request: object, data: st.DataObject) -> None:
    wire: bytes = request.data  # type: ignore[attr-defined]
    cut = data.draw(st.integers(0, len(wire)))
    _same_answers([wire[:cut]], eof=data.draw(st.booleans()))


# --- invalid input ----------------------------------------------------------------------------


#: body-too-large is a limit of the I/O layer, not of the parse.
_PARSE_KINDS = sorted(kind for kind in INVALID_REQUEST_KINDS if kind != "body-too-large")


@pytest.mark.parametrize("kind", _PARSE_KINDS)
@given(data=st.data())
def test_every_invalid_kind(kind: str, data: st.DataObject) -> None:
    request = data.draw(
        invalid_requests(
            kinds=[kind],
            max_header_size=_LIMITS.max_header_size,
            max_header_count=_LIMITS.max_header_count,
            max_target_length=_LIMITS.max_target_length,
        )
    )
    _same_answers(data.draw(splits(request.data, max_chunks=4)), eof=True)


def _mutated(wire: bytes, data: st.DataObject) -> bytes:
    position = data.draw(st.integers(0, max(len(wire) - 1, 0)))
    byte = bytes([data.draw(st.sampled_from(b' \t\r\n:,;"\x00\x7f\x80\xffaZ0/'))])
    how = data.draw(st.sampled_from(["replace", "insert", "delete"]))
    if how == "replace":
        return wire[:position] + byte + wire[position + 1 :]
    if how == "insert":
        return wire[:position] + byte + wire[position:]
    return wire[:position] + wire[position + 1 :]


@given(http_requests(max_body_size=32), st.data())
def test_mutated_valid_requests(request: object, data: st.DataObject) -> None:
    wire = request.data  # type: ignore[attr-defined]
    for _ in range(data.draw(st.integers(1, 3))):
        wire = _mutated(wire, data)
    _same_answers(data.draw(splits(wire, max_chunks=3)), eof=data.draw(st.booleans()))


@given(
    invalid_requests(max_header_size=2048, max_header_count=20, max_target_length=512), st.data()
)
def test_mutated_invalid_requests(request: object, data: st.DataObject) -> None:
    wire = _mutated(request.data, data)  # type: ignore[attr-defined]
    _same_answers([wire], eof=True)


_HEADISH = st.lists(
    st.sampled_from(
        [
            b"GET",
            b"POST",
            b" ",
            b"/",
            b"/a?b",
            b"HTTP/1.1",
            b"HTTP/1.0",
            b"HTTP/2.0",
            b"\r\n",
            b"Host",
            b"host",
            b":",
            b": ",
            b"a",
            b"\t",
            b"Content-Length",
            b"Transfer-Encoding",
            b"chunked",
            b"5",
            b",",
            b"\x00",
            b"\x0b",
            b"\x80",
            b"@",
            b"(",
            b'"',
            b"HTTP/1.1\r\n",
        ]
    ),
    max_size=40,
).map(b"".join)


@given(st.one_of(st.binary(max_size=200), _HEADISH))
@example(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n12345")
@example(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n12345")
@example(b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nContent-Length: x\r\n\r\n")
@example(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\nTransfer-Encoding: gzip\r\n\r\n")
@example(b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n")
@example(b"GET / HTTP/1.1\r\nHost: a\r\nX: \x0bb\r\n\r\n")
@example(b"GET / HTTP/1.0\r\n\r\n")
@example(b"GET / HTTP/1.10\r\nHost: a\r\n\r\n")
@example(b"GET / HTTP/11.1\r\nHost: a\r\n\r\n")
@example(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
@example(b"GET / HTTP/1.1\r\nHost: a\r\nX:\r\nY:  \t \r\n\r\n")
def test_arbitrary_bytes(wire: bytes) -> None:
    _same_answers([wire], eof=True)
    _same_answers([wire + b"\r\n\r\n"], eof=False)


# --- the parsers directly ------------------------------------------------------------------


def _outcome(parse: HeadParser, head: bytes) -> object:
    try:
        return parse(head)
    except HeadError as exc:
        return ("error", exc.status)


@given(http_requests())
def test_h11_direct_and_public_readers_agree(request: object) -> None:
    head: bytes = request.head  # type: ignore[attr-defined]
    assert _outcome(parse_head_h11, head) == _outcome(parse_head_h11_public, head)
    assert _outcome(parse_head, head) == _outcome(parse_head_h11, head)


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 , 5\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\t\r\nY:\t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x0bb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: \x80\xff\r\n\r\n",
        b"GET / HTTP/1.10\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
    ],
)
def test_the_parsers_agree_on_edge_heads(head: bytes) -> None:
    # Heads the connection may refuse on its own (repeated lengths, control bytes): the
    # parsers must still agree, so the proof does not lean on those earlier checks.
    assert _outcome(parse_head, head) == _outcome(parse_head_h11, head)


def test_the_parse_of_a_common_request() -> None:
    head = b"GET /a?b=1 HTTP/1.1\r\nHost: x:80\r\nAccept:  */* \r\nCONTENT-length: 007\r\n\r\n"
    assert parse_head(head) == ParsedHead(
        b"GET",
        b"/a?b=1",
        b"1.1",
        [(b"host", b"x:80"), (b"accept", b"*/*"), (b"content-length", b"007")],
    )


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),  # two spaces
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),  # space before the colon
        (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: " + b"1" * 21 + b"\r\n\r\n", 400),
    ],
)
def test_malformed_heads(head: bytes, status: int) -> None:
    assert _outcome(parse_head, head) == ("error", status)
    assert _outcome(parse_head_h11, head) == ("error", status)


def test_the_switch() -> None:
    assert selected_parser() is parse_head
    assert selected_parser("h11") is parse_head_h11
    with pytest.raises(ValueError, match="TRIO_ASGI_HEAD_PARSER='nope'"):
        selected_parser("nope")


def test_h11s_direct_reader_is_in_use() -> None:
    # If this fails, h11 moved its reader: the reference runs through a Connection.
    assert parse_head_h11 is not parse_head_h11_public
