"""The response head's remembered header checks: as strict as checking every time, and bounded.

The writer remembers (name, value) pairs it found valid, so the common response
skips two regular-expression matches per header. These tests hold it to the rule
it replaces, written here independently (RFC 9110 section 5: a name is a token,
a value visible characters with inner spaces or tabs), for fresh and repeated
headers alike, and check the memory stays bounded.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_asgi._protocol import _http11_writer as writer
from trio_asgi._protocol._http11_writer import ResponseError, ResponseWriter
from trio_asgi._protocol._response import DefaultHeaders

TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
NAME = re.compile(rb"[%s]+" % re.escape(TCHAR))
VALUE = re.compile(rb"(?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?")
DEFAULTS = DefaultHeaders(server_header=True, date_header=True, extra=())

# Mostly valid bytes, with the ones that matter for splitting and strictness mixed in.
_INTERESTING = st.sampled_from([b"\r", b"\n", b"\x00", b" ", b"\t", b":", b"\x7f", b"\x01"])
names = st.lists(
    st.one_of(st.sampled_from([b"x-a", b"Content-Type", b"etag"]), _INTERESTING), max_size=4
).map(b"".join)
values = st.lists(
    st.one_of(st.sampled_from([b"text/plain", b"a b", b"\xff", b"1"]), _INTERESTING), max_size=4
).map(b"".join)


def head(headers: list[tuple[bytes, bytes]]) -> bytes:
    return ResponseWriter().head(
        200, headers, defaults=DEFAULTS, http11_client=True, head_request=False, keep_alive=True
    )


def valid(name: bytes, value: bytes) -> bool:
    return NAME.fullmatch(name) is not None and VALUE.fullmatch(value) is not None


@given(st.lists(st.tuples(names, values), max_size=4))
def test_a_head_is_accepted_exactly_when_every_header_is_valid(
    headers: list[tuple[bytes, bytes]],
) -> None:
    headers = [(n, v) for n, v in headers if n.lower() not in (b"content-length", b"connection")]
    expected = all(valid(name, value) for name, value in headers)
    for _ in range(2):  # the second time, valid pairs are remembered
        if expected:
            out = head(headers)
            for name, value in headers:
                assert b"\r\n%s: %s\r\n" % (name, value) in out
        else:
            with pytest.raises(ResponseError):
                head(headers)


def test_a_remembered_name_does_not_vouch_for_another_value() -> None:
    head([(b"x-a", b"fine")])
    with pytest.raises(ResponseError):
        head([(b"x-a", b"fine\r\nset-cookie: evil=1")])
    with pytest.raises(ResponseError):
        head([(b"x-a", b"fine\x00")])


def test_the_memory_is_bounded_and_skips_large_headers() -> None:
    for index in range(writer._VALID_HEADERS_MAX * 3):
        head([(b"x-n", b"%d" % index)])
        assert len(writer._VALID_HEADERS) <= writer._VALID_HEADERS_MAX
    big = b"v" * writer._VALID_HEADER_MAX_BYTES
    head([(b"x-big", big)])
    assert (b"x-big", big) not in writer._VALID_HEADERS
    head([(b"x-hot", b"1")])
    assert (b"x-hot", b"1") in writer._VALID_HEADERS
