"""The server's configuration: one frozen, validated object.

Every option has a sane default, so ``Config()`` is a working server on
127.0.0.1:8000. Values are checked when the object is built: a bad value or an
unknown option raises :class:`ConfigError` with a one-line message, never later
at request time.

Each option is declared as ``field(default=..., metadata=_about(GROUP, "help"))``: the
help text (reST) and group become the command's ``--help`` and the configuration
reference, and the type gives the parser (a ``Literal`` its choices). Nothing reads
this file's source.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin, get_type_hints

from ._access_log import check_access_log_format
from ._binds import Bind as Bind
from ._binds import FdBind as FdBind
from ._binds import TCPBind as TCPBind
from ._binds import UnixBind as UnixBind
from ._binds import parse_bind as parse_bind
from ._config_checks import (
    check_http2_settings,
    check_processes,
    check_tls,
    check_trusted_peers,
    check_wsgi_and_metrics,
)
from ._config_values import APP as _APP
from ._config_values import DEADLINES as _DEADLINES
from ._config_values import HEADERS as _HEADERS
from ._config_values import LIMITS as _LIMITS
from ._config_values import LISTEN as _LISTEN
from ._config_values import LOGGING as _LOGGING
from ._config_values import OBSERVABILITY as _OBSERVABILITY
from ._config_values import PROCESSES as _PROCESSES
from ._config_values import PROXY as _PROXY
from ._config_values import RUNTIME as _RUNTIME
from ._config_values import TLS as _TLS
from ._config_values import WEBSOCKET as _WEBSOCKET
from ._config_values import FromEnvironment as _FromEnvironment
from ._config_values import Interface as Interface
from ._config_values import LifespanMode as LifespanMode
from ._config_values import Loop as Loop
from ._config_values import TLSVersion as TLSVersion
from ._config_values import WebSocketMode as WebSocketMode
from ._config_values import about as _about
from ._config_values import check_count as _check_count
from ._config_values import check_headers as _check_headers
from ._config_values import check_seconds as _check_seconds
from ._errors import ConfigError as ConfigError
from ._protocol._forwarded import DEFAULT_ALLOW_IPS, TrustedPeers

#: The access-log line, formatted with :meth:`str.format_map`; see the logging reference.
DEFAULT_ACCESS_LOG_FORMAT = '{client} - "{request_line}" {status} {reason}'


@dataclass(frozen=True, kw_only=True)
class Config:
    """How the server binds, limits, times out and logs.

    Timeouts are seconds (int or float; ``None`` turns a timeout off). Sizes are bytes.

    Example:
        >>> Config(bind=("127.0.0.1:0",), timeout_keep_alive=2.5).timeout_keep_alive
        2.5
    """

    # --- where to listen -------------------------------------------------------------------
    bind: tuple[str, ...] = field(
        default=("127.0.0.1:8000",),
        metadata=_about(
            _LISTEN,
            "Addresses to listen on: ``host:port``, ``[v6]:port``, ``unix:PATH`` or ``fd://N``.",
        ),
    )
    backlog: int = field(
        default=2048,
        metadata=_about(_LISTEN, "The listen(2) backlog of each socket we bind."),
    )

    # --- the app ----------------------------------------------------------------------------
    root_path: str = field(
        default="",
        metadata=_about(
            _APP,
            "Prefix the app is mounted under (from a reverse proxy); it starts every ``path``.",
        ),
    )
    lifespan: LifespanMode = field(
        default="auto",
        metadata=_about(
            _APP,
            "``on``: lifespan must work; ``off``: never sent; ``auto``: used if the app has it.",
        ),
    )
    interface: Interface = field(
        default="auto",
        metadata=_about(
            _APP,
            "How to call the app; ``auto`` detects ASGI 2 double callables and WSGI apps once.",
        ),
    )

    # --- behind a proxy ------------------------------------------------------------------
    proxy_headers: bool = field(
        default=True,
        metadata=_about(
            _PROXY,
            "Believe ``X-Forwarded-For``/``-Proto`` and ``Forwarded`` from trusted peers: "
            "they set the scope's ``client`` and ``scheme``.",
        ),
    )
    forwarded_allow_ips: str = field(
        default=_FromEnvironment(DEFAULT_ALLOW_IPS),
        metadata=_about(
            _PROXY,
            "The trusted peers (proxies), comma-separated: addresses, CIDR networks, ``*`` "
            "(everyone) and ``unix:`` (unix-socket peers). Default: ``FORWARDED_ALLOW_IPS`` "
            "from the environment, else 127.0.0.1.",
        ),
    )
    proxy_protocol: bool = field(
        default=False,
        metadata=_about(
            _PROXY,
            "Expect a PROXY protocol header (v1 or v2) first on connections from trusted peers.",
        ),
    )
    http2: bool = field(
        default=True,
        metadata=_about(
            _LISTEN,
            "Serve HTTP/2: by ALPN ``h2`` over TLS, and by prior knowledge (the connection "
            "preface) on a cleartext port, which serves HTTP/1.1 too.",
        ),
    )
    http2_max_concurrent_streams: int = field(
        default=100,
        metadata=_about(
            _LISTEN,
            "HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: streams open at once on one connection; "
            "one more gets RST_STREAM REFUSED_STREAM (safe to retry).",
        ),
    )
    http2_initial_window_size: int = field(
        default=65535,
        metadata=_about(
            _LISTEN,
            "HTTP/2 SETTINGS_INITIAL_WINDOW_SIZE in bytes (1 .. 2^31-1): the unread request "
            "body (or WebSocket data) held for one stream; reopened as the app reads.",
        ),
    )
    http2_max_frame_size: int = field(
        default=16384,
        metadata=_about(
            _LISTEN,
            "HTTP/2 SETTINGS_MAX_FRAME_SIZE in bytes (16384 .. 16777215): the largest frame "
            "payload we accept; larger is a FRAME_SIZE_ERROR.",
        ),
    )
    http2_max_header_list_size: int | None = field(
        default=None,
        metadata=_about(
            _LISTEN,
            "HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE in bytes (at least 64); a larger header "
            "list gets 431 on its stream. Default: ``max_header_size``, at least 4096.",
        ),
    )

    # --- runtime ----------------------------------------------------------------------------
    loop: Loop = field(
        default="auto",
        metadata=_about(
            _RUNTIME,
            "The event loop the command and ``run()`` start: ``auto`` picks asyncio when the "
            "app imports an asyncio-only library (Django, Quart, asyncpg...), else trio; "
            "``uvloop`` is an extra. ``serve()`` runs on whichever loop awaits it.",
        ),
    )

    # --- deadlines (seconds) ------------------------------------------------------------------
    timeout_first_byte: float | None = field(
        default=10.0,
        metadata=_about(_DEADLINES, "A new connection must send its first byte within this time."),
    )
    timeout_request_head: float | None = field(
        default=10.0,
        metadata=_about(
            _DEADLINES,
            "A request head must be complete this long after its first byte (slowloris).",
        ),
    )
    timeout_keep_alive: float | None = field(
        default=5.0,
        metadata=_about(_DEADLINES, "An idle keep-alive connection is closed after this long."),
    )
    timeout_body: float | None = field(
        default=300.0,
        metadata=_about(
            _DEADLINES,
            "A whole request body must arrive within this time once the app starts reading it.",
        ),
    )
    timeout_body_idle: float | None = field(
        default=30.0,
        metadata=_about(
            _DEADLINES, "Longest silence from the client while the app waits for body bytes."
        ),
    )
    timeout_write: float | None = field(
        default=30.0,
        metadata=_about(
            _DEADLINES, "Longest time one write may wait for a client that does not read."
        ),
    )
    timeout_graceful_shutdown: float | None = field(
        default=10.0,
        metadata=_about(
            _DEADLINES,
            "How long a graceful shutdown lets requests in flight finish before cancelling them.",
        ),
    )
    timeout_lifespan_startup: float | None = field(
        default=60.0,
        metadata=_about(_DEADLINES, "How long the app may take to answer ``lifespan.startup``."),
    )
    timeout_lifespan_shutdown: float | None = field(
        default=30.0,
        metadata=_about(_DEADLINES, "How long the app may take to answer ``lifespan.shutdown``."),
    )

    # --- limits -------------------------------------------------------------------------------
    max_header_size: int = field(
        default=16384,
        metadata=_about(
            _LIMITS,
            "Largest request header section (the header fields, not the request line, which "
            "``max_target_length`` bounds) in bytes; larger gets 431.",
        ),
    )
    max_header_count: int = field(
        default=100,
        metadata=_about(_LIMITS, "Most header fields in one request; more gets 431."),
    )
    max_target_length: int = field(
        default=8192,
        metadata=_about(_LIMITS, "Longest request target in bytes; longer gets 414."),
    )
    max_body_size: int | None = field(
        default=None,
        metadata=_about(
            _LIMITS, "Largest request body in bytes (``None``: no limit); larger gets 413."
        ),
    )
    max_requests_per_connection: int | None = field(
        default=None,
        metadata=_about(
            _LIMITS, "Requests served on one connection before it is closed (``None``: no limit)."
        ),
    )
    limit_concurrency: int | None = field(
        default=None,
        metadata=_about(
            _LIMITS,
            "Requests (and WebSocket sessions) in flight at once; beyond it new requests get 503.",
        ),
    )

    # --- response headers ---------------------------------------------------------------------
    headers: tuple[tuple[str, str], ...] = field(
        default=(),
        metadata=_about(
            _HEADERS, "Extra headers added to every response, as ``(name, value)`` pairs."
        ),
    )
    server_header: bool = field(
        default=True,
        metadata=_about(_HEADERS, "Add ``Server: trio-asgi`` to responses that have none."),
    )
    date_header: bool = field(
        default=True,
        metadata=_about(_HEADERS, "Add a ``Date`` header to responses that have none."),
    )

    # --- logging ------------------------------------------------------------------------------
    access_log: bool = field(
        default=True,
        metadata=_about(_LOGGING, "Log one line per request on the ``trio_asgi.access`` logger."),
    )
    access_log_format: str = field(
        default=DEFAULT_ACCESS_LOG_FORMAT,
        metadata=_about(
            _LOGGING, "The access-log line; the fields are listed in the logging reference."
        ),
    )

    # --- WebSocket ----------------------------------------------------------------------------
    ws: WebSocketMode = field(
        default="auto",
        metadata=_about(
            _WEBSOCKET,
            "``none`` refuses upgrades; ``auto`` and ``wsproto`` serve them with wsproto.",
        ),
    )
    ws_max_size: int = field(
        default=16 * 1024 * 1024,
        metadata=_about(
            _WEBSOCKET,
            "Largest WebSocket message (after decompression) in bytes; larger closes with 1009.",
        ),
    )
    ws_max_queue: int = field(
        default=32,
        metadata=_about(
            _WEBSOCKET,
            "Received messages queued for an app that does not read; then we stop reading.",
        ),
    )
    ws_max_queue_bytes: int | None = field(
        default=None,
        metadata=_about(
            _WEBSOCKET,
            "Received bytes held for an app at most (queued messages, the one being read, the "
            "one the app is sending) before we stop reading (``None``: ``ws_max_size``).",
        ),
    )
    ws_ping_interval: float | None = field(
        default=20.0,
        metadata=_about(_WEBSOCKET, "Send a ping this often (``None``: never)."),
    )
    ws_ping_timeout: float | None = field(
        default=20.0,
        metadata=_about(_WEBSOCKET, "Close with 1011 when a pong takes longer than this."),
    )
    ws_per_message_deflate: bool = field(
        default=True,
        metadata=_about(_WEBSOCKET, "Offer and accept permessage-deflate."),
    )
    timeout_ws_handshake: float | None = field(
        default=10.0,
        metadata=_about(
            _WEBSOCKET,
            "The app must accept or close a WebSocket within this time of ``websocket.connect``.",
        ),
    )
    timeout_ws_close: float | None = field(
        default=5.0,
        metadata=_about(_WEBSOCKET, "How long to wait for the peer's close frame after ours."),
    )

    # --- TLS ----------------------------------------------------------------------------------
    ssl_certfile: str | None = field(
        default=None,
        metadata=_about(
            _TLS,
            "Serve HTTPS (and WSS) with this PEM certificate chain; ``None``: plain HTTP. "
            "SIGHUP (or ``Server.reload_tls()``) loads the files again.",
        ),
    )
    ssl_keyfile: str | None = field(
        default=None,
        metadata=_about(_TLS, "The private key's PEM file, if not in ``ssl_certfile``."),
    )
    ssl_keyfile_password: str | None = field(
        default=None,
        repr=False,
        metadata=_about(_TLS, "The password of an encrypted ``ssl_keyfile``."),
    )
    ssl_ca_certs: str | None = field(
        default=None,
        metadata=_about(_TLS, "CA certificates (PEM) that client certificates must chain to."),
    )
    ssl_cert_reqs: int = field(
        default=0,
        metadata=_about(
            _TLS,
            "Client certificates: 0 not asked for, 1 optional, 2 required (mTLS; a client "
            "without one fails the handshake); 1 and 2 need ``ssl_ca_certs``.",
        ),
    )
    ssl_ciphers: str | None = field(
        default=None,
        metadata=_about(
            _TLS, "OpenSSL cipher list for TLS 1.2; ``None``: OpenSSL's secure defaults."
        ),
    )
    ssl_min_version: TLSVersion = field(
        default="TLSv1.2",
        metadata=_about(
            _TLS,
            "Oldest TLS version accepted. Compression and renegotiation are always off.",
        ),
    )
    timeout_tls_handshake: float | None = field(
        default=10.0,
        metadata=_about(_TLS, "A new TLS connection must finish its handshake within this time."),
    )

    # --- processes ----------------------------------------------------------------------------
    workers: int | None = field(
        default=None,
        metadata=_about(
            _PROCESSES,
            "Serve from this many worker processes under a supervisor (the command only; "
            "default: ``WEB_CONCURRENCY`` if set, else one process and no supervisor).",
        ),
    )
    reload: bool = field(
        default=False,
        metadata=_about(
            _PROCESSES,
            "Restart the server when a watched file changes (development; the ``reload`` extra).",
        ),
    )
    reload_dir: tuple[str, ...] = field(
        default=(),
        metadata=_about(
            _PROCESSES,
            "Directories ``reload`` watches (default: the current directory and ``--app- dir``).",
        ),
    )
    reload_include: tuple[str, ...] = field(
        default=(),
        metadata=_about(
            _PROCESSES,
            "Glob patterns of files whose change reloads (default: ``*.py``).",
        ),
    )
    reload_exclude: tuple[str, ...] = field(
        default=(),
        metadata=_about(
            _PROCESSES,
            "Glob patterns of files never watched (default: hidden files, ``*.pyc``, ``*~``).",
        ),
    )
    reload_delay: float | None = field(
        default=0.25,
        metadata=_about(
            _PROCESSES,
            "Seconds to wait for more changes before reloading (a save touches several files).",
        ),
    )
    limit_max_requests: int | None = field(
        default=None,
        metadata=_about(
            _PROCESSES,
            "A worker is replaced after serving this many requests (the command; ``None``: never).",
        ),
    )
    limit_max_requests_jitter: int = field(
        default=0,
        metadata=_about(
            _PROCESSES,
            "Adds up to this many requests to each worker's limit, so workers do not all "
            "restart at once.",
        ),
    )
    timeout_worker_healthcheck: float | None = field(
        default=5.0,
        metadata=_about(
            _PROCESSES,
            "A worker that sends no heartbeat for this long is killed and replaced.",
        ),
    )
    reuse_port: bool = field(
        default=False,
        metadata=_about(
            _PROCESSES,
            "Each worker binds its own socket with SO_REUSEPORT (the kernel spreads "
            "connections) instead of sharing the supervisor's.",
        ),
    )

    # --- WSGI apps and observability --------------------------------------------------------
    wsgi_threads: int | None = field(
        default=None,
        metadata=_about(
            _OBSERVABILITY,
            "Threads that run a WSGI app's calls at once (default: 4 per CPU core, 4 to 32).",
        ),
    )
    metrics_bind: str | None = field(
        default=None,
        metadata=_about(
            _OBSERVABILITY,
            "``HOST:PORT`` of a separate listener serving Prometheus metrics at ``/metrics`` "
            "(default: none).",
        ),
    )

    # derived, not an option: the parsed binds
    binds: tuple[Bind, ...] = field(init=False, repr=False, compare=False)
    # derived, not an option: the parsed forwarded_allow_ips
    trusted_peers: TrustedPeers = field(init=False, repr=False, compare=False)

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
            elif f.name in CHOICES and value not in CHOICES[f.name]:
                raise ConfigError(f"{f.name}: {value!r} is not one of {', '.join(CHOICES[f.name])}")
        for name in ("backlog", "max_header_size", "max_header_count", "max_target_length"):
            _check_count(name, getattr(self, name), minimum=1)
        for name in ("max_body_size", "max_requests_per_connection", "limit_concurrency"):
            if getattr(self, name) is not None:
                _check_count(name, getattr(self, name), minimum=0 if name == "max_body_size" else 1)
        check_tls(self)
        check_http2_settings(self)
        _check_count("ws_max_size", self.ws_max_size, minimum=1)
        _check_count("ws_max_queue", self.ws_max_queue, minimum=1)
        if self.ws_max_queue_bytes is not None:
            _check_count("ws_max_queue_bytes", self.ws_max_queue_bytes, minimum=1)
        if self.max_header_size < 64:
            raise ConfigError("max_header_size: must be at least 64 bytes")
        if self.root_path and (not self.root_path.startswith("/") or self.root_path.endswith("/")):
            raise ConfigError("root_path: must start with '/' and not end with '/' (or be empty)")
        object.__setattr__(self, "headers", _check_headers(self.headers))
        check_trusted_peers(self)
        check_wsgi_and_metrics(self)
        check_access_log_format(self.access_log_format)
        check_processes(self)

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


#: The allowed values of each ``Literal`` option, from its type.
CHOICES: dict[str, tuple[str, ...]] = {
    name: tuple(get_args(hint))
    for name, hint in get_type_hints(Config).items()
    if get_origin(hint) is Literal
}
