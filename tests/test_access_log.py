"""The access-log vocabulary: Gunicorn's %(atom)s syntax, headers by name, pid, durations
in microseconds, the WebSocket close code; bad formats fail at start; values stay escaped."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from trio_asgi import Config, ConfigError
from trio_asgi._access_log import compile_format
from trio_asgi._logging import AccessLog, configure_logging
from trio_asgi.testing import open_test_server

GUNICORN_DEFAULT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    loggers = [logging.getLogger(), logging.getLogger("trio_asgi")]
    loggers.append(logging.getLogger("trio_asgi.access"))
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    yield
    for logger, handlers, level, propagate in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def line(capsys: pytest.CaptureFixture[str], fmt: str, **overrides: Any) -> str:
    configure_logging("info", None, False)
    request: dict[str, Any] = {
        "client": ("127.0.0.1", 49370),
        "method": "GET",
        "raw_target": b"/x?y=1",
        "http_version": "1.1",
        "status": 200,
        "response_bytes": 5,
        "duration": 0.0123456,
        "headers": [(b"user-agent", b"curl/8.5"), (b"x-request-id", b"abc")],
        "response_headers": [(b"content-type", b"text/plain")],
    }
    AccessLog(Config(access_log_format=fmt)).log_http(**{**request, **overrides})
    out: str = capsys.readouterr().out
    return out.rstrip("\n")


def test_gunicorn_default_format(capsys: pytest.CaptureFixture[str]) -> None:
    text = line(capsys, GUNICORN_DEFAULT)
    time = r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]"
    pattern = rf'127\.0\.0\.1 - - {time} "GET /x\?y=1 HTTP/1\.1" 200 5 "-" "curl/8\.5"'
    assert re.fullmatch(pattern, text), text


def test_gunicorn_atoms(capsys: pytest.CaptureFixture[str]) -> None:
    fmt = "%(m)s %(U)s %(q)s %(H)s %(B)s %(D)s %(M)s %(T)s %(L)s %(p)s 100%% {'k': 1}"
    assert line(capsys, fmt) == (
        f"GET /x y=1 HTTP/1.1 5 12346 12 0 0.012346 <{os.getpid()}> 100% {{'k': 1}}"
    )
    assert line(capsys, "%(b)s", response_bytes=0) == "-"


def test_headers_by_name_both_syntaxes(capsys: pytest.CaptureFixture[str]) -> None:
    gunicorn = "%({X-Request-Id}i)s %({content-type}o)s %({missing}i)s"
    assert line(capsys, gunicorn) == "abc text/plain -"
    braces = "{request_header[x-request-id]} {response_header[content-type]} {pid} {duration_us}"
    assert line(capsys, braces) == f"abc text/plain {os.getpid()} 12346"


def test_header_values_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    headers = [(b"x-request-id", b'\x1b[31mred" \\ \xff'), (b"x-request-id", b"two")]
    text = line(capsys, "%({x-request-id}i)s", headers=headers)
    assert text == r"\x1b[31mred\x22 \x5c \xff, two"


def test_tls_version_and_websocket_close_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert line(capsys, "{tls_version} {ws_close_code}") == "- -"
    assert line(capsys, "{tls_version}", tls_version="TLSv1.3") == "TLSv1.3"
    configure_logging("info", None, False)
    log = AccessLog(Config(access_log_format="{ws_close_code} {status} {reason}"))
    common = {"client": None, "raw_target": b"/ws", "http_version": "1.1", "duration": 0.0}
    log.log_websocket(event="accept", code=None, **common)
    log.log_websocket(event="close", code=4000, **common)
    assert capsys.readouterr().out.splitlines() == [
        "- 101 WebSocket accept",
        "4000 4000 WebSocket close",
    ]


def test_websocket_lines_have_the_request_headers(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", None, False)
    log = AccessLog(Config(access_log_format='%(h)s "%(a)s" %({x-id}i)s %(b)s %(s)s'))
    headers = [(b"user-agent", b"ws-client"), (b"x-id", b"7")]
    log.log_websocket(
        client=("::1", 5), raw_target=b"/ws", http_version="1.1", event="close", code=1000,
        duration=0.0, headers=headers,
    )  # fmt: skip
    assert capsys.readouterr().out.splitlines() == ['[::1] "ws-client" 7 - 1000']


@pytest.mark.parametrize(
    ("fmt", "error"),
    [
        ("%(h)s %(nope)s", "unknown atom %(nope)s"),
        ("%(h)s %({HOME}e)s", "unknown atom %({HOME}e)s"),
        ("%(h)s 100%", "a lone '%'"),
        ("%(h)s {client}", "mixes {field} and %(atom)s"),
        ("%(h)s %({bad name}i)s", "unknown atom"),
        ("{client} {nope}", "unknown field 'nope'"),
    ],
)
def test_bad_formats_fail_at_start(fmt: str, error: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(error)):
        Config(access_log_format=fmt)


def test_brace_syntax_keeps_literal_percent() -> None:
    assert compile_format("{status} 100%").text == "{status} 100%"
    assert compile_format("%(s)s").used == {"status"}


async def test_response_headers_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-type", b"application/json"), (b"x-trace", b"t1")]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})

    caplog.set_level(logging.INFO, logger="trio_asgi.access")
    fmt = '%(s)s "%({x-trace}o)s" "%({content-type}o)s" "%({x-in}i)s"'
    async with open_test_server(app, access_log=True, access_log_format=fmt) as server:
        connection = await server.connect()
        await connection.request("GET", "/", headers=[("X-In", "hello")])
    lines = [r.getMessage() for r in caplog.records if r.name == "trio_asgi.access"]
    assert lines == ['201 "t1" "application/json" "hello"']
