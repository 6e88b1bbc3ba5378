"""Request-target forms (RFC 9112 section 3.2) and the path fields of the scope."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_asgi._protocol._http11 import BadRequest, RequestHead
from trio_asgi._protocol._target import InvalidTarget, decode_path, split_target


@pytest.mark.parametrize(
    ("method", "target", "expected"),
    [
        ("GET", b"/", (b"/", b"")),
        ("GET", b"/a/b", (b"/a/b", b"")),
        ("GET", b"/a?", (b"/a", b"")),
        ("GET", b"/a?x=1&y=2", (b"/a", b"x=1&y=2")),
        ("GET", b"/a?x=?", (b"/a", b"x=?")),
        ("GET", b"//double", (b"//double", b"")),
        ("GET", b"/%2F?%20", (b"/%2F", b"%20")),
        # absolute-form: the authority goes, the path stays (and is never empty)
        ("GET", b"http://example.com/a?x", (b"/a", b"x")),
        ("GET", b"https://example.com:8443/a/b", (b"/a/b", b"")),
        ("GET", b"HTTP://EXAMPLE.COM/A", (b"/A", b"")),
        ("GET", b"http://example.com", (b"/", b"")),
        ("GET", b"http://example.com?x=1", (b"/", b"x=1")),
        ("GET", b"http://[::1]:80/v6", (b"/v6", b"")),
        ("POST", b"http://h/a/?b", (b"/a/", b"b")),
        # asterisk-form with OPTIONS only
        ("OPTIONS", b"*", (b"*", b"")),
    ],
)
def test_valid_forms(method: str, target: bytes, expected: tuple[bytes, bytes]) -> None:
    assert split_target(method, target) == expected


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", b"*"),
        ("HEAD", b"*"),
        ("OPTIONS", b"*?x"),
        ("GET", b"example.com:80"),  # authority-form belongs to CONNECT
        ("OPTIONS", b"example.com:443"),
        ("GET", b"a/b"),
        ("GET", b"?x"),
        ("GET", b"ftp://example.com/"),
        ("GET", b"ws://example.com/"),
        ("GET", b"http:/example.com/"),
        ("GET", b"http://"),
        ("GET", b"http:///path"),
        ("GET", b"http://?x"),
        ("GET", b"http://user@example.com/"),
        ("GET", b"http://user:pw@example.com"),
        ("GET", b"/a#b"),
        ("GET", b"/a?b#c"),
        ("GET", b"/#"),
        ("GET", b"http://h/p#f"),
        ("GET", b"http://h#f"),
        ("GET", b"http://h?q#f"),
    ],
)
def test_invalid_forms(method: str, target: bytes) -> None:
    with pytest.raises(InvalidTarget):
        split_target(method, target)


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (b"/caf%C3%A9/a%2Fb/%FF", "/caf\u00e9/a/b/\ufffd"),
        (b"/plain", "/plain"),
        (b"/%20space", "/ space"),
        (b"/100%", "/100%"),
        (b"/%zz", "/%zz"),
        (b"/%e2%82%ac", "/\u20ac"),
        (b"/%C3", "/\ufffd"),
        (b"*", "*"),
        (b"/a+b", "/a+b"),  # '+' is not a space in a path
    ],
)
def test_decode_path(raw: bytes, path: str) -> None:
    assert decode_path(raw) == path


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=20))
def test_decode_path_inverts_percent_encoding(text: str) -> None:
    assert decode_path(b"/" + quote(text).encode("ascii")) == "/" + text


# --- through the connection ----------------------------------------------------------------


def test_absolute_form_reaches_the_app_as_a_path(hp: Any) -> None:
    conn = hp.conn()
    events = hp.feed(conn, hp.Client().request(b"GET", b"http://example.com/caf%C3%A9?q=1"))
    head = events[0]
    assert type(head) is RequestHead
    assert (head.raw_path, head.query_string) == (b"/caf%C3%A9", b"q=1")


@pytest.mark.parametrize(
    ("method", "target"),
    [
        (b"GET", b"*"),
        (b"GET", b"example.com:80"),
        (b"GET", b"http://u@h/"),
        (b"GET", b"/a#b"),
        (b"GET", b"http://h#f"),
        (b"GET", b"mailto:x"),
    ],
)
def test_invalid_target_is_400_and_the_app_never_sees_it(
    hp: Any, method: bytes, target: bytes
) -> None:
    conn = hp.conn()
    raw = method + b" " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n"
    events = hp.feed(conn, raw)
    assert len(events) == 1
    assert type(events[0]) is BadRequest
    assert events[0].status == 400
    assert conn.request is None
