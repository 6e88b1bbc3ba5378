"""Reason phrases, the Date cache, default headers and the error replies we write ourselves."""

from __future__ import annotations

import http
import time
from email.utils import parsedate_to_datetime
from typing import Any

import h11
import pytest

from trio_asgi._protocol._response import (
    SERVER_HEADER_VALUE,
    DateHeader,
    DefaultHeaders,
    error_response,
    reason_phrase,
)
from trio_asgi._version import __version__


def defaults(
    *, server: bool = False, date: bool = False, extra: tuple[tuple[str, str], ...] = ()
) -> DefaultHeaders:
    return DefaultHeaders(server_header=server, date_header=date, extra=extra)


def completed(d: DefaultHeaders, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    out = list(headers)
    d.complete(out, {name.lower() for name, _ in headers})
    return out


# --- reason phrases ------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(http.HTTPStatus))
def test_known_statuses_use_their_phrase(status: http.HTTPStatus) -> None:
    assert reason_phrase(status.value) == status.phrase.encode()


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        (199, b"Informational"),
        (299, b"Success"),
        (399, b"Redirection"),
        (499, b"Client Error"),
        (599, b"Server Error"),
        (600, b"Unknown"),
        (999, b"Unknown"),
        (0, b"Unknown"),
    ],
)
def test_unknown_statuses_get_a_phrase(status: int, phrase: bytes) -> None:
    assert reason_phrase(status) == phrase


def test_every_status_line_code_has_a_nonempty_phrase() -> None:
    assert all(reason_phrase(status) for status in range(100, 1000))


# --- Date -----------------------------------------------------------------------------------


def test_date_is_http_date_and_cached_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_700_000_000.25]
    monkeypatch.setattr(time, "time", lambda: now[0])
    date = DateHeader()
    first = date.value()
    assert first == b"Tue, 14 Nov 2023 22:13:20 GMT"
    assert parsedate_to_datetime(first.decode()).timestamp() == 1_700_000_000
    now[0] = 1_700_000_000.99
    assert date.value() is first  # same second: the cached bytes, not reformatted
    now[0] = 1_700_000_001.0
    assert date.value() == b"Tue, 14 Nov 2023 22:13:21 GMT"


def test_real_clock_date_is_now() -> None:
    before = int(time.time())
    value = DateHeader().value()
    after = int(time.time())
    assert before <= parsedate_to_datetime(value.decode()).timestamp() <= after


# --- default headers ------------------------------------------------------------------------


def test_server_header_value() -> None:
    assert b"trio-asgi/" + __version__.encode() == SERVER_HEADER_VALUE


def test_nothing_added_when_all_disabled() -> None:
    assert completed(defaults(), [(b"x", b"1")]) == [(b"x", b"1")]


def test_date_server_and_extra_added() -> None:
    out = completed(defaults(server=True, date=True, extra=(("X-Frame-Options", "DENY"),)), [])
    names = [name for name, _ in out]
    assert names == [b"date", b"server", b"x-frame-options"]
    assert dict(out)[b"server"] == SERVER_HEADER_VALUE
    assert dict(out)[b"x-frame-options"] == b"DENY"


def test_present_headers_are_not_repeated() -> None:
    d = defaults(server=True, date=True, extra=(("X-A", "1"), ("X-B", "2")))
    out = completed(d, [(b"Server", b"app"), (b"Date", b"then"), (b"x-a", b"app")])
    assert out == [(b"Server", b"app"), (b"Date", b"then"), (b"x-a", b"app"), (b"x-b", b"2")]


def test_extra_values_are_latin1() -> None:
    out = completed(defaults(extra=(("X-Name", "caf\u00e9"),)), [])
    assert out == [(b"x-name", b"caf\xe9")]


def test_repeated_configured_header_kept() -> None:
    out = completed(defaults(extra=(("Link", "</a>"), ("Link", "</b>"))), [])
    assert out == [(b"link", b"</a>"), (b"link", b"</b>")]


def test_configured_server_header_replaces_ours() -> None:
    out = completed(defaults(server=True, extra=(("Server", "edge"),)), [])
    assert out == [(b"server", b"edge")]


def test_configured_date_header_replaces_ours() -> None:
    out = completed(defaults(date=True, extra=(("Date", "fixed"),)), [])
    assert out == [(b"date", b"fixed")]


# --- error replies --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 404, 408, 413, 414, 431, 500, 501, 503, 505])
def test_error_response_parses(hp: Any, status: int) -> None:
    raw = error_response(status, defaults(server=True, date=True))
    client = hp.Client()
    client.request()
    reply = client.response(raw)
    assert reply.status == status
    assert reply.reason == reason_phrase(status)
    assert reply.body == reason_phrase(status) + b"\n"
    assert reply.values(b"content-length") == [str(len(reply.body)).encode()]
    assert reply.values(b"connection") == [b"close"]
    assert reply.values(b"content-type") == [b"text/plain; charset=utf-8"]
    assert reply.values(b"server") == [SERVER_HEADER_VALUE]
    assert len(reply.values(b"date")) == 1
    assert client.h11.their_state is h11.MUST_CLOSE


def test_error_response_extra_headers_and_versions() -> None:
    raw = error_response(503, defaults(), extra_headers=((b"retry-after", b"1"),))
    assert raw.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"\r\nretry-after: 1\r\n" in raw
    assert error_response(400, defaults(), http_version=b"1.0").startswith(b"HTTP/1.0 400 ")
    # a version we do not speak (the request said HTTP/2.0) is answered in 1.1
    assert error_response(505, defaults(), http_version=b"2.0").startswith(b"HTTP/1.1 505 ")


def test_error_response_does_not_duplicate_configured_headers() -> None:
    raw = error_response(400, defaults(extra=(("Connection", "keep-alive"), ("X-A", "1"))))
    assert raw.lower().count(b"\r\nconnection:") == 1
    assert b"\r\nx-a: 1\r\n" in raw


def test_error_response_unknown_status_has_a_phrase() -> None:
    assert error_response(599, defaults()).startswith(b"HTTP/1.1 599 Server Error\r\n")
