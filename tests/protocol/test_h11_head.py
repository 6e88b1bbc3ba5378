"""h11's head reader called directly gives exactly what ``h11.Connection`` gives."""

from __future__ import annotations

from collections.abc import Callable

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_asgi._protocol._h11_head import parse_request_head, parse_request_head_public
from trio_asgi.testing.strategies import (
    RawInvalidRequest,
    RawRequest,
    http_requests,
    invalid_requests,
)


def _outcome(parse: Callable[[bytes], h11.Request], head: bytes) -> object:
    try:
        event = parse(head)
    except h11.ProtocolError as exc:
        return ("error", exc.error_status_hint)
    assert isinstance(event, h11.Request)
    return (event.method, event.target, event.http_version, list(event.headers.raw_items()))


def _head_of(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    return data[: end + 4] if end >= 0 else data + b"\r\n\r\n"


def test_the_direct_reader_is_in_use() -> None:
    # If this fails, h11 moved its reader: every request pays for a Connection again.
    assert parse_request_head is not parse_request_head_public


@given(http_requests())
def test_valid_heads_parse_the_same(request: RawRequest) -> None:
    head = request.head
    assert _outcome(parse_request_head, head) == _outcome(parse_request_head_public, head)


@given(invalid_requests())
def test_invalid_heads_fail_the_same(request: RawInvalidRequest) -> None:
    head = _head_of(request.data)
    assert _outcome(parse_request_head, head) == _outcome(parse_request_head_public, head)


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_fail_the_same(junk: bytes) -> None:
    head = junk.replace(b"\r\n\r\n", b"") + b"\r\n\r\n"
    assert _outcome(parse_request_head, head) == _outcome(parse_request_head_public, head)


@pytest.mark.parametrize("parse", [parse_request_head, parse_request_head_public])
def test_an_incomplete_head_is_an_error(parse: Callable[[bytes], h11.Request]) -> None:
    assert _outcome(parse, b"GET / HTTP/1.1\r\nHost: a\r\n") == ("error", 400)
