"""The server's configuration: one frozen, validated object.

Every option has a sane default, so ``Config()`` is a working server on
127.0.0.1:8000. Values are checked when the object is built: a bad value or an
unknown option raises :class:`ConfigError` with a one-line message, never later
at request time.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

LifespanMode: TypeAlias = Literal["auto", "on", "off"]
Interface: TypeAlias = Literal["auto", "asgi3", "asgi2", "wsgi"]
WebSocketMode: TypeAlias = Literal["auto", "wsproto", "none"]
Loop: TypeAlias = Literal["trio", "asyncio", "uvloop"]

#: The access-log line, formatted with :meth:`str.format_map`; see the logging reference.
DEFAULT_ACCESS_LOG_FORMAT = '{client} - "{request_line}" {status} {reason}'


class ConfigError(ValueError):
    """A configuration value is invalid; the message is one line that names the option."""


@dataclass(frozen=True, slots=True)
class TCPBind:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class UnixBind:
    path: str

    def __str__(self) -> str:
        return f"unix:{self.path}"


@dataclass(frozen=True, slots=True)
class FdBind:
    fd: int

    def __str__(self) -> str:
        return f"fd://{self.fd}"


Bind: TypeAlias = TCPBind | UnixBind | FdBind


def parse_bind(text: str) -> Bind:
    """Parse ``host:port``, ``[v6]:port``, ``unix:/path`` or ``fd://N``."""
    if text.startswith("unix:"):
        path = text[len("unix:") :]
        if not path:
            raise ConfigError(f"bind {text!r}: empty unix socket path")
        return UnixBind(path)
    if text.startswith("fd://"):
        digits = text[len("fd://") :]
        if not digits.isdigit():
            raise ConfigError(f"bind {text!r}: fd:// takes a file descriptor number")
        return FdBind(int(digits))
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise ConfigError(f"bind {text!r}: IPv6 binds look like [::1]:8000")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(f"bind {text!r}: {host!r} is not an IPv6 address") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise ConfigError(f"bind {text!r}: expected host:port, [v6]:port, unix:PATH or fd://N")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"bind {text!r}: port must be a number from 0 to 65535")
    return TCPBind(host or "0.0.0.0", int(port_text))


_CHOICES: dict[str, tuple[str, ...]] = {
    "lifespan": ("auto", "on", "off"),
    "interface": ("auto", "asgi3", "asgi2", "wsgi"),
    "ws": ("auto", "wsproto", "none"),
    "loop": ("trio", "asyncio", "uvloop"),
}


@dataclass(frozen=True, kw_only=True)
class Config:
    """How the server binds, limits, times out and logs.

    Timeouts are seconds (int or float; ``None`` turns a timeout off). Sizes are bytes.

    Example:
        >>> Config(bind=("127.0.0.1:0",), timeout_keep_alive=2.5).timeout_keep_alive
        2.5
    """

    # --- where to listen -------------------------------------------------------------------
    #: Addresses to listen on: ``host:port``, ``[v6]:port``, ``unix:PATH`` or ``fd://N``.
    bind: tuple[str, ...] = ("127.0.0.1:8000",)
    #: The listen(2) backlog of each socket we bind.
    backlog: int = 2048

    # --- the app ----------------------------------------------------------------------------
    #: Prefix the app is mounted under (from a reverse proxy); it starts every ``path``.
    root_path: str = ""
    #: ``on``: lifespan must work; ``off``: never sent; ``auto``: used when the app supports it.
    lifespan: LifespanMode = "auto"
    #: How to call the app; ``auto`` detects ASGI 2 double callables and WSGI apps once.
    interface: Interface = "auto"

    # --- runtime ----------------------------------------------------------------------------
    #: The event loop the command and ``run()`` start: ``asyncio``, or ``uvloop`` (an extra),
    #: for apps built on asyncio libraries. ``serve()`` runs on whichever loop awaits it.
    loop: Loop = "trio"

    # --- deadlines (seconds) ------------------------------------------------------------------
    #: A new connection must send its first byte within this time.
    timeout_first_byte: float | None = 10.0
    #: A request head must be complete this long after its first byte (slowloris).
    timeout_request_head: float | None = 10.0
    #: An idle keep-alive connection is closed after this long.
    timeout_keep_alive: float | None = 5.0
    #: A whole request body must arrive within this time once the app starts reading it.
    timeout_body: float | None = 300.0
    #: Longest silence from the client while the app waits for body bytes.
    timeout_body_idle: float | None = 30.0
    #: Longest time one write may wait for a client that does not read.
    timeout_write: float | None = 30.0
    #: How long a graceful shutdown lets requests in flight finish before cancelling them.
    timeout_graceful_shutdown: float | None = 10.0
    #: How long the app may take to answer ``lifespan.startup``.
    timeout_lifespan_startup: float | None = 60.0
    #: How long the app may take to answer ``lifespan.shutdown``.
    timeout_lifespan_shutdown: float | None = 30.0

    # --- limits -------------------------------------------------------------------------------
    #: Largest request header section (the header fields, not the request line, which
    #: ``max_target_length`` bounds) in bytes; larger gets 431.
    max_header_size: int = 16384
    #: Most header fields in one request; more gets 431.
    max_header_count: int = 100
    #: Longest request target in bytes; longer gets 414.
    max_target_length: int = 8192
    #: Largest request body in bytes (``None``: no limit); larger gets 413.
    max_body_size: int | None = None
    #: Requests served on one connection before it is closed (``None``: no limit).
    max_requests_per_connection: int | None = None
    #: Requests (and WebSocket sessions) in flight at once; beyond it new requests get 503.
    limit_concurrency: int | None = None

    # --- response headers ---------------------------------------------------------------------
    #: Extra headers added to every response, as ``(name, value)`` pairs.
    headers: tuple[tuple[str, str], ...] = ()
    #: Add ``Server: trio-asgi`` to responses that have none.
    server_header: bool = True
    #: Add a ``Date`` header to responses that have none.
    date_header: bool = True

    # --- logging ------------------------------------------------------------------------------
    #: Log one line per request on the ``trio_asgi.access`` logger.
    access_log: bool = True
    #: The access-log line; the fields are listed in the logging reference.
    access_log_format: str = DEFAULT_ACCESS_LOG_FORMAT

    # --- WebSocket ----------------------------------------------------------------------------
    #: ``none`` refuses upgrades; ``auto`` and ``wsproto`` serve them with wsproto.
    ws: WebSocketMode = "auto"
    #: Largest WebSocket message (after decompression) in bytes; larger closes with 1009.
    ws_max_size: int = 16 * 1024 * 1024
    #: Received messages queued for an app that does not read; then we stop reading.
    ws_max_queue: int = 32
    #: Send a ping this often (``None``: never).
    ws_ping_interval: float | None = 20.0
    #: Close with 1011 when a pong takes longer than this.
    ws_ping_timeout: float | None = 20.0
    #: Offer and accept permessage-deflate.
    ws_per_message_deflate: bool = True
    #: The app must accept or close a WebSocket within this time of ``websocket.connect``.
    timeout_ws_handshake: float | None = 10.0
    #: How long to wait for the peer's close frame after ours.
    timeout_ws_close: float | None = 5.0

    # --- WSGI apps and observability --------------------------------------------------------
    #: Threads that run a WSGI app's calls at once (``None``: 4 per CPU core, 4 to 32).
    wsgi_threads: int | None = None
    #: ``HOST:PORT`` of a separate listener serving Prometheus metrics at ``/metrics``
    #: (``None``: no metrics listener).
    metrics_bind: str | None = None

    # derived, not an option: the parsed binds
    binds: tuple[Bind, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.bind, str):  # type: ignore[unreachable]
            raise ConfigError("bind: give a tuple of addresses, not one string")
        if not self.bind:
            raise ConfigError("bind: give at least one address")
        object.__setattr__(self, "bind", tuple(self.bind))
        object.__setattr__(self, "binds", tuple(parse_bind(b) for b in self.bind))
        for f in dataclasses.fields(self):
            if not f.init:
                continue
            value = getattr(self, f.name)
            if f.name.startswith("timeout_") or f.name in ("ws_ping_interval", "ws_ping_timeout"):
                object.__setattr__(self, f.name, _check_seconds(f.name, value))
            elif f.name in _CHOICES and value not in _CHOICES[f.name]:
                raise ConfigError(
                    f"{f.name}: {value!r} is not one of {', '.join(_CHOICES[f.name])}"
                )
        for name in ("backlog", "max_header_size", "max_header_count", "max_target_length"):
            _check_count(name, getattr(self, name), minimum=1)
        for name in ("max_body_size", "max_requests_per_connection", "limit_concurrency"):
            if getattr(self, name) is not None:
                _check_count(name, getattr(self, name), minimum=0 if name == "max_body_size" else 1)
        _check_count("ws_max_size", self.ws_max_size, minimum=1)
        _check_count("ws_max_queue", self.ws_max_queue, minimum=1)
        if self.max_header_size < 64:
            raise ConfigError("max_header_size: must be at least 64 bytes")
        if self.root_path and (not self.root_path.startswith("/") or self.root_path.endswith("/")):
            raise ConfigError("root_path: must start with '/' and not end with '/' (or be empty)")
        object.__setattr__(self, "headers", _check_headers(self.headers))
        _check_wsgi_and_metrics(self)
        # The access log knows its fields and their types; imported here because it
        # imports this module.
        from ._logging import check_access_log_format

        check_access_log_format(self.access_log_format)

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> Config:
        """Build a Config from a mapping, naming the closest option for any typo."""
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        for key in options:
            if key not in names:
                close = difflib.get_close_matches(key, sorted(names), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"unknown option {key!r}{hint}")
        return cls(**options)

    def replace(self, **changes: Any) -> Config:
        """A copy with some options changed (validated like a new Config)."""
        return Config.from_mapping({**self.options(), **changes})

    def options(self) -> dict[str, Any]:
        """The options as a dict, as accepted by :meth:`from_mapping`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}


def _check_wsgi_and_metrics(config: Config) -> None:
    if config.wsgi_threads is not None:
        _check_count("wsgi_threads", config.wsgi_threads, minimum=1)
    if config.metrics_bind is not None:
        if not isinstance(config.metrics_bind, str):
            raise ConfigError(f"metrics_bind: expected HOST:PORT, got {config.metrics_bind!r}")
        try:
            tcp = isinstance(parse_bind(config.metrics_bind), TCPBind)
        except ConfigError as exc:
            raise ConfigError(f"metrics_bind: {exc}") from None
        if not tcp:
            raise ConfigError(f"metrics_bind: {config.metrics_bind!r} must be HOST:PORT")


def _check_seconds(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name}: expected seconds as a number or None, got {value!r}")
    seconds = float(value)
    if math.isnan(seconds) or seconds <= 0:
        raise ConfigError(f"{name}: must be a positive number of seconds, got {value!r}")
    return seconds


def _check_count(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: expected a whole number, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {value}")


def _check_headers(headers: object) -> tuple[tuple[str, str], ...]:
    checked: list[tuple[str, str]] = []
    for item in headers:  # type: ignore[attr-defined]
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise ConfigError(f"headers: expected (name, value) pairs, got {item!r}")
        name, value = item
        if not isinstance(name, str) or not name or not _is_token(name):
            raise ConfigError(f"headers: {name!r} is not a valid header name")
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise ConfigError(
                f"headers: the value of {name!r} must be a string without CR, LF, NUL"
            )
        checked.append((name, value))
    return tuple(checked)


_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _is_token(text: str) -> bool:
    return all(c in _TOKEN_CHARS for c in text)
