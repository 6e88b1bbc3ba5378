"""Logging: handlers, colours, JSON lines, and the access log.

Two loggers: ``trio_asgi`` (server events and errors; stderr) and ``trio_asgi.access``
(one line per request; stdout). The command calls :func:`configure_logging`; a program
embedding :func:`trio_asgi.serve` keeps its own logging setup.

The access log is on the hot path: :class:`AccessLog` works out per config which fields
its format needs, and hands the logger a lazy :class:`AccessLine`, formatted only if a
handler writes it. Its vocabulary (fields, escaping, Gunicorn's ``%(atom)s`` syntax) is
:mod:`trio_asgi._access_log`.
"""

from __future__ import annotations

import datetime
import http
import json
import logging
import logging.config
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal, TypeAlias

from ._access_log import ACCESS_LOG_FIELDS as ACCESS_LOG_FIELDS
from ._access_log import Headers, compile_format, escape_bytes, escape_text
from ._access_log import check_access_log_format as check_access_log_format
from ._config import Config
from ._errors import ConfigError

LogFormat: TypeAlias = Literal["text", "json"]
#: Below DEBUG, as in Uvicorn (``--log-level trace``).
TRACE = 5
logging.addLevelName(TRACE, "TRACE")
LOG_LEVELS: dict[str, int] = {
    name.lower(): logging.getLevelNamesMapping()[name]
    for name in ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "TRACE")
}

# --- escaping ----------------------------------------------------------------------------------

_KNOWN_METHODS = {m: m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}


def _format_client(client: Sequence[Any] | None) -> str:
    if not client:
        return "-"
    host, port = client[0], client[1]
    host = escape_text(str(host))
    if ":" in host:
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"


_REASONS: dict[int, str] = {s.value: s.phrase for s in http.HTTPStatus}
_WS_DEFAULT_CODES: dict[str, int] = {"accept": 101, "reject": 403, "close": 1005}


_NO_HEADERS = Headers()


# --- the access log ---------------------------------------------------------------------------


class AccessLine:
    """A lazy access-log message: ``format`` filled in with ``fields`` when a handler asks."""

    __slots__ = ("fields", "format")

    def __init__(self, log_format: str, fields: dict[str, Any]) -> None:
        self.format = log_format
        self.fields = fields

    def __str__(self) -> str:
        return self.format.format_map(self.fields)


class AccessLog:
    """Writes the access log for one :class:`~trio_asgi.Config`.

    Build it after logging is configured: :attr:`enabled` is computed once.
    Callers check :attr:`enabled` before collecting what a ``log_*`` call needs.
    """

    __slots__ = (
        "_format",
        "_logger",
        "_want_headers",
        "_want_response_headers",
        "_want_time",
        "enabled",
    )

    def __init__(self, config: Config) -> None:
        compiled = compile_format(config.access_log_format)
        used = compiled.used
        self._format = compiled.text  # Gunicorn's %(atom)s syntax translated once
        self._logger = logging.getLogger("trio_asgi.access")
        #: Whether lines are written at all.
        self.enabled: bool = config.access_log and self._logger.isEnabledFor(logging.INFO)
        # A JSON handler writes every field, so then they are all computed.
        everything = _has_json_handler(self._logger)
        request_fields = {"user_agent", "referer", "request_header"}
        self._want_headers = everything or not used.isdisjoint(request_fields)
        self._want_response_headers = everything or "response_header" in used
        self._want_time = everything or not used.isdisjoint({"time", "time_clf"})

    def log_http(
        self,
        *,
        client: tuple[str, int] | None,
        method: str,
        raw_target: bytes,
        http_version: str,
        status: int,
        response_bytes: int,
        duration: float,
        headers: Sequence[tuple[bytes, bytes]],
        response_headers: Sequence[tuple[bytes, bytes]] = (),
        tls_version: str | None = None,
    ) -> None:
        """Log one HTTP request (``duration`` in seconds, ``headers`` of the request)."""
        if not self.enabled:
            return
        fields = self._common(client, method, raw_target, http_version, duration)
        fields["status"] = status
        fields["reason"] = _REASONS.get(status, "-")
        fields["bytes"] = response_bytes
        fields["bytes_clf"] = response_bytes or "-"
        if tls_version is not None:
            fields["tls_version"] = tls_version
        self._add_request_headers(fields, headers)
        if self._want_response_headers:
            fields["response_header"] = Headers.of(response_headers)
        self._logger.info(AccessLine(self._format, fields))

    def log_websocket(
        self,
        *,
        client: tuple[str, int] | None,
        raw_target: bytes,
        http_version: str,
        event: str,
        code: int | None,
        duration: float,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        """Log a WebSocket ``accept``, ``reject`` (``code``: HTTP status) or ``close`` event.

        ``status`` is ``code`` (default 101, 403, 1005); ``reason`` is ``"WebSocket <event>"``.
        """
        if not self.enabled:
            return
        fields = self._common(client, "GET", raw_target, http_version, duration)
        fields["status"] = code if code is not None else _WS_DEFAULT_CODES.get(event, 0)
        fields["reason"] = f"WebSocket {event}"
        fields["bytes"] = 0
        fields["bytes_clf"] = "-"
        if event == "close":
            fields["ws_close_code"] = fields["status"]
        self._add_request_headers(fields, headers)
        self._logger.info(AccessLine(self._format, fields))

    def _add_request_headers(
        self, fields: dict[str, Any], headers: Sequence[tuple[bytes, bytes]]
    ) -> None:
        if self._want_headers:
            request_headers = fields["request_header"] = Headers.of(headers)
            fields["user_agent"] = request_headers["user-agent"]
            fields["referer"] = request_headers["referer"]

    def _common(
        self,
        client: tuple[str, int] | None,
        method: str,
        raw_target: bytes,
        http_version: str,
        duration: float,
    ) -> dict[str, Any]:
        target = escape_bytes(raw_target)
        path, _, query = target.partition("?")
        method = _KNOWN_METHODS.get(method) or escape_text(method)
        now = datetime.datetime.now().astimezone() if self._want_time else None
        return {
            "client": _format_client(client),
            "client_host": _format_client((client[0], None)) if client else "-",
            "method": method,
            "path": path,
            "query": query,
            "request_line": f"{method} {target} HTTP/{http_version}",
            "http_version": http_version,
            "protocol": f"HTTP/{http_version}",
            "duration_ms": round(duration * 1000.0, 3),
            "duration_us": round(duration * 1_000_000),
            "duration_s": duration,
            "user_agent": "-",
            "referer": "-",
            "request_header": _NO_HEADERS,
            "response_header": _NO_HEADERS,
            "time": now.isoformat(timespec="seconds") if now else "-",
            "time_clf": now.strftime("[%d/%b/%Y:%H:%M:%S %z]") if now else "-",
            "pid": os.getpid(),  # per line: right in a forked worker too
            "tls_version": "-",
            "ws_close_code": "-",
        }


def _has_json_handler(logger: logging.Logger) -> bool:
    current: logging.Logger | None = logger
    while current is not None:
        if any(isinstance(h.formatter, JSONFormatter) for h in current.handlers):
            return True
        current = current.parent if current.propagate else None
    return False


# --- formatters -------------------------------------------------------------------------------

_RESET = "\x1b[0m"
# cyan, green, yellow, red, bold red
_ANSI = ("\x1b[36m", "\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[1;31m")
_LEVEL_COLOURS = dict(zip(("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), _ANSI, strict=True))
# By status class: 1xx, 2xx, 3xx, 4xx, 5xx.
_STATUS_COLOURS = {1: "\x1b[34m", 2: "\x1b[32m", 3: "\x1b[36m", 4: "\x1b[33m", 5: "\x1b[31m"}


class _Painted:
    """A field value that formats itself wrapped in a colour."""

    __slots__ = ("colour", "value")

    def __init__(self, value: object, colour: str) -> None:
        self.value = value
        self.colour = colour

    def __format__(self, spec: str) -> str:
        return f"{self.colour}{format(self.value, spec)}{_RESET}"

    def __str__(self) -> str:
        return f"{self.colour}{self.value}{_RESET}"

    def __repr__(self) -> str:
        return f"{self.colour}{self.value!r}{_RESET}"


class TextFormatter(logging.Formatter):
    """``INFO     message``, with the level name (and access status) in colour if asked."""

    def __init__(self, use_colors: bool = False) -> None:
        super().__init__("%(message)s")
        self.use_colors = use_colors

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = record.msg
        if isinstance(line, AccessLine):
            return self._access(line) if self.use_colors else record.message
        name = record.levelname
        pad = " " * (8 - len(name))
        if self.use_colors and name in _LEVEL_COLOURS:
            name = f"{_LEVEL_COLOURS[name]}{name}{_RESET}"
        return f"{name}{pad} {record.message}"

    @staticmethod
    def _access(line: AccessLine) -> str:
        status = line.fields["status"]
        colour = _STATUS_COLOURS.get(status // 100) if isinstance(status, int) else None
        if colour is None:
            return str(line)
        reason = _Painted(line.fields["reason"], colour)
        return line.format.format_map(
            {**line.fields, "status": _Painted(status, colour), "reason": reason}
        )


class JSONFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, and access fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {}
        if isinstance(record.msg, AccessLine):
            data.update(record.msg.fields)
        data["timestamp"] = datetime.datetime.fromtimestamp(record.created).astimezone().isoformat()
        data["level"] = record.levelname
        data["logger"] = record.name
        data["message"] = record.getMessage()
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


# --- configuration ----------------------------------------------------------------------------


def _colour_default(stream: IO[str]) -> bool:
    """Colours on a terminal, unless NO_COLOR is set to anything (https://no-color.org)."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


class _OurHandler(logging.StreamHandler[IO[str]]):
    """A stream handler we installed, so configuring again replaces it."""


def _install(logger: logging.Logger, stream: IO[str], formatter: logging.Formatter) -> None:
    for old in [h for h in logger.handlers if isinstance(h, _OurHandler)]:
        logger.removeHandler(old)
    handler = _OurHandler(stream)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    logger.propagate = False


def _uninstall(logger: logging.Logger) -> None:
    for old in [h for h in logger.handlers if isinstance(h, _OurHandler)]:
        logger.removeHandler(old)
    logger.propagate = True


def configure_logging(
    level: str | None = "info",
    log_config: str | None = None,
    use_colors: bool | None = None,
    *,
    log_format: LogFormat = "text",
) -> None:
    """Set up the ``trio_asgi`` (stderr) and ``trio_asgi.access`` (stdout) loggers.

    Args:
        level: A :data:`LOG_LEVELS` name for the ``trio_asgi`` loggers; ``None``
            keeps what ``log_config`` says (``info`` without one).
        log_config: A ``.json``/``.yaml``/``.yml`` file for :func:`logging.config.dictConfig`
            (YAML needs PyYAML), else a :func:`logging.config.fileConfig` file. With one,
            our own handlers are not installed: our loggers propagate to whatever the
            file sets up (a handler on the root logger is enough), and they stay at
            ``level`` (``info`` by default) unless the file gives them a level.
        use_colors: Force colours on or off; ``None``: on for a terminal without NO_COLOR.
        log_format: ``text`` or ``json`` (one JSON object per line).

    Raises:
        ConfigError: Unknown level, or a log config that cannot be read or applied.
    """
    if level is not None and level.lower() not in LOG_LEVELS:
        raise ConfigError(f"log_level: {level!r} is not one of {', '.join(LOG_LEVELS)}")
    server_logger = logging.getLogger("trio_asgi")
    access_logger = logging.getLogger("trio_asgi.access")
    for logger, stream in ((server_logger, sys.stderr), (access_logger, sys.stdout)):
        if log_config is None:
            colours = _colour_default(stream) if use_colors is None else use_colors
            formatter = JSONFormatter() if log_format == "json" else TextFormatter(colours)
            _install(logger, stream, formatter)
        else:
            _uninstall(logger)  # the file says where lines go (the root's handlers, say)
    access_logger.setLevel(logging.NOTSET)  # follows trio_asgi's level
    if log_config is not None:
        _apply_log_config(log_config)
    # A file that gives our logger no level (one that only sets up handlers) must not
    # leave it at the root's WARNING: that would hide every startup and access line.
    if level is not None or server_logger.level == logging.NOTSET:
        server_logger.setLevel(LOG_LEVELS[(level or "info").lower()])


def _apply_log_config(path: str) -> None:
    if not Path(path).is_file():
        raise ConfigError(f"log_config: {path!r} is not a file")
    suffix = Path(path).suffix.lower()
    if suffix in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped, unused-ignore]
        except ImportError:
            raise ConfigError(
                f"log_config: {path!r} is YAML, which needs PyYAML (pip install pyyaml)"
            ) from None
    try:
        if suffix in (".json", ".yaml", ".yml"):
            with open(path, encoding="utf-8") as file:
                _dict_config(json.load(file) if suffix == ".json" else yaml.safe_load(file))
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except Exception as exc:
        message = str(exc).replace("\n", " ")
        raise ConfigError(f"log_config: {path!r}: {type(exc).__name__}: {message}") from None


def _dict_config(config: object) -> None:
    if not isinstance(config, Mapping):
        raise TypeError("the file must hold a mapping (a dictConfig schema)")
    # Loggers that exist already (ours, the app's) stay on unless the file says otherwise.
    logging.config.dictConfig({"disable_existing_loggers": False, **config})
