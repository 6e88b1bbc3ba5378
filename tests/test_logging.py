"""The access log (format, fields, escaping), colours, JSON lines and --log-config files."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trio_asgi import Config, ConfigError
from trio_asgi._logging import AccessLog, check_access_log_format, configure_logging

SERVER = logging.getLogger("trio_asgi")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide loggers: put them back after each test."""
    loggers = [logging.getLogger(), SERVER, logging.getLogger("trio_asgi.access")]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate, lg.disabled) for lg in loggers]
    yield
    for logger, handlers, level, propagate, disabled in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
        logger.disabled = disabled


def http_line(config: Config | None = None, **overrides: Any) -> None:
    request: dict[str, Any] = {
        "client": ("127.0.0.1", 49370),
        "method": "GET",
        "raw_target": b"/x?y=1",
        "http_version": "1.1",
        "status": 200,
        "response_bytes": 5,
        "duration": 0.0123456,
        "headers": [(b"host", b"example.com"), (b"user-agent", b"curl/8.5")],
    }
    AccessLog(config or Config()).log_http(**{**request, **overrides})


def access_output(capsys: pytest.CaptureFixture[str], **kwargs: Any) -> str:
    fmt = kwargs.pop("fmt", None)
    configure_logging("info", None, False)
    http_line(Config(access_log_format=fmt) if fmt else None, **kwargs)
    out: str = capsys.readouterr().out
    return out


def test_default_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert access_output(capsys) == '127.0.0.1:49370 - "GET /x?y=1 HTTP/1.1" 200 OK\n'


def test_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    fmt = (
        "{client}|{method}|{path}|{query}|{request_line}|{http_version}|{status}|{reason}|"
        "{bytes}|{duration_ms}|{user_agent}|{referer}"
    )
    out = access_output(capsys, fmt=fmt, status=404, headers=[(b"referer", b"http://a/")])
    assert out == (
        "127.0.0.1:49370|GET|/x|y=1|GET /x?y=1 HTTP/1.1|1.1|404|Not Found|5|12.346|-|http://a/\n"
    )


def test_time_field_is_iso_8601(capsys: pytest.CaptureFixture[str]) -> None:
    out = access_output(capsys, fmt="{time}")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d\n", out)


def test_path_cannot_inject_terminal_codes(capsys: pytest.CaptureFixture[str]) -> None:
    # CVE-2020-7694: the decoded path reached the log with its escape sequences intact.
    out = access_output(capsys, fmt="{path}?{query}", raw_target=b"/\x1b[31mred\x1b[0m?q=\x07")
    assert out == "/\\x1b[31mred\\x1b[0m?q=\\x07\n"
    assert "\x1b" not in out


def test_quotes_backslashes_and_non_ascii_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    # A quote could end the request line early and fake the fields after it.
    out = access_output(capsys, raw_target='/caf\u00e9"x\\'.encode())
    assert out == '127.0.0.1:49370 - "GET /caf\\xc3\\xa9\\x22x\\x5c HTTP/1.1" 200 OK\n'


def test_header_fields_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    headers = [(b"user-agent", b"evil\r\nINFO fake line\x7f"), (b"referer", b"\xff")]
    out = access_output(capsys, fmt="{user_agent} {referer}", headers=headers)
    assert out == "evil\\x0d\\x0aINFO fake line\\x7f \\xff\n"


def test_unusual_method_is_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    assert access_output(capsys, fmt="{method}", method="M-SEARCH\x1b") == "M-SEARCH\\x1b\n"


@pytest.mark.parametrize(
    ("client", "shown"),
    [(None, "-"), (("::1", 8080), "[::1]:8080"), (("10.0.0.1", 1), "10.0.0.1:1")],
)
def test_client_forms(capsys: pytest.CaptureFixture[str], client: Any, shown: str) -> None:
    assert access_output(capsys, fmt="{client}", client=client) == f"{shown}\n"


def test_unknown_status_has_a_placeholder_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert access_output(capsys, fmt="{status} {reason}", status=599) == "599 -\n"


def test_websocket_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", None, False)
    log = AccessLog(Config())
    common: dict[str, Any] = {"client": ("127.0.0.1", 5), "raw_target": b"/ws?a=1"}
    log.log_websocket(**common, http_version="1.1", event="accept", code=None, duration=0.0)
    log.log_websocket(**common, http_version="1.1", event="close", code=None, duration=2.0)
    log.log_websocket(**common, http_version="1.1", event="close", code=4000, duration=2.0)
    log.log_websocket(**common, http_version="1.1", event="reject", code=None, duration=0.0)
    assert capsys.readouterr().out.splitlines() == [
        '127.0.0.1:5 - "GET /ws?a=1 HTTP/1.1" 101 WebSocket accept',
        '127.0.0.1:5 - "GET /ws?a=1 HTTP/1.1" 1005 WebSocket close',
        '127.0.0.1:5 - "GET /ws?a=1 HTTP/1.1" 4000 WebSocket close',
        '127.0.0.1:5 - "GET /ws?a=1 HTTP/1.1" 403 WebSocket reject',
    ]


@pytest.mark.parametrize(
    ("fmt", "error"),
    [
        ("{client} {nope}", "unknown field 'nope'"),
        ("{status:q}", "Unknown format code 'q'"),
        ("{path.upper.x}", "has no attribute"),
        ("{client", "expected '}'"),
    ],
)
def test_bad_formats_are_config_errors(fmt: str, error: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(error)):
        check_access_log_format(fmt)


def test_format_fields_are_reported() -> None:
    assert check_access_log_format("{client} {path[0]} {status:>3}") == {"client", "path", "status"}


def test_access_log_off(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", None, False)
    log = AccessLog(Config(access_log=False))
    assert not log.enabled
    http_line(Config(access_log=False))
    assert capsys.readouterr().out == ""


def test_access_log_follows_the_log_level(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("warning", None, False)
    assert not AccessLog(Config()).enabled
    http_line()
    SERVER.info("not shown")
    SERVER.warning("shown")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "WARNING  shown\n"


def test_server_lines_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("debug", None, False)
    SERVER.debug("details")
    SERVER.info("Listening on http://127.0.0.1:8000")
    assert capsys.readouterr().err == (
        "DEBUG    details\nINFO     Listening on http://127.0.0.1:8000\n"
    )


def test_configuring_twice_does_not_double_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", None, False)
    configure_logging("info", None, False)
    SERVER.info("once")
    assert capsys.readouterr().err == "INFO     once\n"


def test_colours(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", None, True)
    SERVER.error("bad")
    for status in (101, 204, 302, 404, 503):
        http_line(status=status)
    captured = capsys.readouterr()
    assert captured.err == "\x1b[31mERROR\x1b[0m    bad\n"
    colours = re.findall(r'" \x1b\[(\d+)m(\d+)\x1b\[0m \x1b\[\d+m[^\x1b]*\x1b\[0m', captured.out)
    assert colours == [("34", "101"), ("32", "204"), ("36", "302"), ("33", "404"), ("31", "503")]


def test_colours_with_conversions_and_outside_http_statuses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", None, True)
    log = AccessLog(Config(access_log_format="{status!s} {reason!r}"))
    request: dict[str, Any] = {"client": None, "raw_target": b"/", "http_version": "1.1"}
    log.log_http(**request, method="GET", status=200, response_bytes=0, duration=0, headers=[])
    log.log_websocket(**request, event="close", code=1000, duration=0)  # no HTTP class
    assert capsys.readouterr().out.splitlines() == [
        "\x1b[32m200\x1b[0m \x1b[32m'OK'\x1b[0m",
        "1000 'WebSocket close'",
    ]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colours_on_a_terminal_unless_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    for no_color, coloured in ((None, True), ("1", False)):
        if no_color is not None:
            monkeypatch.setenv("NO_COLOR", no_color)
        terminal = _Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        configure_logging("info", None, None)
        SERVER.info("hi")
        assert ("\x1b[32mINFO" in terminal.getvalue()) is coloured


def test_no_colours_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", None, None)
    SERVER.info("hi")
    assert capsys.readouterr().err == "INFO     hi\n"


def test_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", None, False, log_format="json")
    SERVER.info("Listening on %s", "x")
    # The default format uses no header field, but JSON lines carry them all.
    http_line()
    captured = capsys.readouterr()
    server = json.loads(captured.err)
    access = json.loads(captured.out)
    assert server["message"] == "Listening on x"
    assert (server["level"], server["logger"]) == ("INFO", "trio_asgi")
    assert access["message"] == '127.0.0.1:49370 - "GET /x?y=1 HTTP/1.1" 200 OK'
    assert access["user_agent"] == "curl/8.5"
    assert (access["status"], access["path"], access["query"]) == (200, "/x", "y=1")
    assert access["logger"] == "trio_asgi.access"


def test_json_lines_carry_tracebacks(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", None, False, log_format="json")
    SERVER.error("Exception in ASGI application", exc_info=ValueError("boom"))
    line = json.loads(capsys.readouterr().err)
    assert "ValueError: boom" in line["exception"]


def test_unknown_level() -> None:
    with pytest.raises(ConfigError, match="log_level: 'loud' is not one of critical"):
        configure_logging("loud", None, False)


# --- --log-config ---------------------------------------------------------------------------

DICT_CONFIG = {
    "version": 1,
    "formatters": {"plain": {"format": "%(levelname)s|%(name)s|%(message)s"}},
    "handlers": {
        "err": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {"trio_asgi": {"handlers": ["err"], "level": "WARNING", "propagate": False}},
}


def test_json_log_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(DICT_CONFIG))
    # No --log-level: the file's WARNING stands.
    configure_logging(None, str(path), False)
    SERVER.info("hidden")
    SERVER.warning("shown")
    assert capsys.readouterr().err == "WARNING|trio_asgi|shown\n"


def test_log_level_applies_over_a_log_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(DICT_CONFIG))
    configure_logging("info", str(path), False)
    SERVER.info("shown")
    assert capsys.readouterr().err == "INFO|trio_asgi|shown\n"


def test_ini_log_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "logging.ini"
    path.write_text(
        "[loggers]\nkeys=root,trio_asgi\n[handlers]\nkeys=err\n[formatters]\nkeys=plain\n"
        "[logger_root]\nhandlers=\n"
        "[logger_trio_asgi]\nhandlers=err\nqualname=trio_asgi\npropagate=0\n"
        "[handler_err]\nclass=StreamHandler\nformatter=plain\nargs=(sys.stderr,)\n"
        "[formatter_plain]\nformat=ini:%(message)s\n"
    )
    configure_logging("info", str(path), False)
    SERVER.info("hello")
    assert capsys.readouterr().err == "ini:hello\n"


def test_yaml_needs_pyyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "logging.yaml"
    path.write_text("version: 1\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    with pytest.raises(ConfigError, match=r"needs PyYAML \(pip install pyyaml\)"):
        configure_logging("info", str(path), False)


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("missing.json", None, "is not a file"),
        ("bad.json", "{not json", "JSONDecodeError"),
        ("list.json", "[1, 2]", "must hold a mapping"),
        ("bad-schema.json", '{"version": 99}', "ValueError"),
        ("bad.ini", "[loggers]\nkeys=nothing\n", "log_config"),
    ],
)
def test_bad_log_configs_are_one_line_config_errors(
    tmp_path: Path, name: str, content: str | None, error: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as info:
        configure_logging("info", str(path), False)
    assert error in str(info.value)
    assert "\n" not in str(info.value)
