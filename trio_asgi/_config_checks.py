"""The checks of :class:`~trio_asgi.Config` that look at several options together.

Each takes the ``Config`` being built (from its ``__post_init__``) and raises
:class:`~trio_asgi.ConfigError` with the option's name; some store the normalised
value. ``config`` is typed loosely: importing ``Config`` here would be an import circle.
"""

from __future__ import annotations

import os
from typing import Any

from ._binds import TCPBind, parse_bind
from ._config_values import FromEnvironment, check_count, check_seconds
from ._errors import ConfigError
from ._protocol._forwarded import TrustedPeers
from ._protocol._http2_limits import MAX_FRAME_SIZE, MAX_STREAM_ID, MAX_WINDOW, MIN_FRAME_SIZE


def check_trusted_peers(config: Any) -> None:
    spec = config.forwarded_allow_ips
    if type(spec) is FromEnvironment:
        spec = os.environ.get("FORWARDED_ALLOW_IPS", str(spec))
    if not isinstance(spec, str):
        raise ConfigError(f"forwarded_allow_ips: expected a comma-separated string, got {spec!r}")
    try:
        trusted = TrustedPeers(spec)
    except ValueError as exc:
        raise ConfigError(f"forwarded_allow_ips: {exc}") from None
    object.__setattr__(config, "forwarded_allow_ips", spec)
    object.__setattr__(config, "trusted_peers", trusted)


def check_http2_settings(config: Any) -> None:
    """The HTTP/2 settings are within RFC 9113 section 6.5.2's ranges."""
    ranges = {
        "http2_max_concurrent_streams": (1, MAX_STREAM_ID),
        "http2_initial_window_size": (1, MAX_WINDOW),
        "http2_max_frame_size": (MIN_FRAME_SIZE, MAX_FRAME_SIZE),
        "http2_max_header_list_size": (64, MAX_WINDOW),
    }
    for name, (low, high) in ranges.items():
        value = getattr(config, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{name}: must be an integer from {low} to {high}, not {value!r}")


def check_tls(config: Any) -> None:
    """The TLS options fit together (the files are read when the server starts)."""
    for name in ("ssl_certfile", "ssl_keyfile", "ssl_keyfile_password", "ssl_ca_certs"):
        value = getattr(config, name)
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"{name}: expected a non-empty string or None")
    if config.ssl_certfile is None:
        for name in ("ssl_keyfile", "ssl_keyfile_password", "ssl_ca_certs", "ssl_ciphers"):
            if getattr(config, name) is not None:
                raise ConfigError(f"{name}: only means something with ssl_certfile (TLS)")
    if isinstance(config.ssl_cert_reqs, bool) or config.ssl_cert_reqs not in (0, 1, 2):
        raise ConfigError(
            f"ssl_cert_reqs: must be 0 (none), 1 (optional) or 2 (required), "
            f"got {config.ssl_cert_reqs!r}"
        )
    if config.ssl_cert_reqs and config.ssl_ca_certs is None:
        raise ConfigError("ssl_cert_reqs: checking client certificates needs ssl_ca_certs")


def check_wsgi_and_metrics(config: Any) -> None:
    if config.wsgi_threads is not None:
        check_count("wsgi_threads", config.wsgi_threads, minimum=1)
    if config.metrics_bind is not None:
        if not isinstance(config.metrics_bind, str):
            raise ConfigError(f"metrics_bind: expected HOST:PORT, got {config.metrics_bind!r}")
        try:
            tcp = isinstance(parse_bind(config.metrics_bind), TCPBind)
        except ConfigError as exc:
            raise ConfigError(f"metrics_bind: {exc}") from None
        if not tcp:
            raise ConfigError(f"metrics_bind: {config.metrics_bind!r} must be HOST:PORT")


def check_processes(config: Any) -> None:
    if config.workers is not None:
        check_count("workers", config.workers, minimum=1)
    if config.limit_max_requests is not None:
        check_count("limit_max_requests", config.limit_max_requests, minimum=1)
    check_count("limit_max_requests_jitter", config.limit_max_requests_jitter, minimum=0)
    for name in ("reload_dir", "reload_include", "reload_exclude"):
        value = getattr(config, name)
        if isinstance(value, str) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{name}: give a tuple of strings")
        object.__setattr__(config, name, tuple(value))
    if config.reload_delay is not None:
        object.__setattr__(
            config, "reload_delay", check_seconds("reload_delay", config.reload_delay)
        )
    if config.reload and config.workers is not None:
        raise ConfigError("reload: cannot be combined with workers (--reload runs one process)")
