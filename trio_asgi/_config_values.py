"""The option vocabulary of :class:`~trio_asgi.Config`: value types, help groups, checks of
single values (each raising :class:`ConfigError` with a one-line message)."""

from __future__ import annotations

import math
from typing import Literal, TypeAlias

from ._errors import ConfigError

LifespanMode: TypeAlias = Literal["auto", "on", "off"]
Interface: TypeAlias = Literal["auto", "asgi3", "asgi2", "wsgi"]
WebSocketMode: TypeAlias = Literal["auto", "wsproto", "none"]
Loop: TypeAlias = Literal["auto", "trio", "asyncio", "uvloop"]
TLSVersion: TypeAlias = Literal["TLSv1.2", "TLSv1.3"]


class FromEnvironment(str):
    """The default of ``forwarded_allow_ips``: replaced by ``FORWARDED_ALLOW_IPS`` when set."""

    __slots__ = ()


# The help groups of the options, in the order --help and the docs show them.
LISTEN = "where to listen"
APP = "the app"
RUNTIME = "runtime"
DEADLINES = "deadlines (seconds)"
LIMITS = "limits"
HEADERS = "response headers"
LOGGING = "logging"
WEBSOCKET = "WebSocket"
TLS = "TLS"
PROCESSES = "processes"
PROXY = "behind a proxy"
OBSERVABILITY = "WSGI apps and observability"


def about(group: str, help_text: str) -> dict[str, str]:
    """A Config field's metadata: the group and help text that ``--help`` and the docs show.

    The help text is reST (``literal`` markup); the command strips the markup.
    """
    return {"group": group, "help": help_text}


def check_seconds(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name}: expected seconds as a number or None, got {value!r}")
    seconds = float(value)
    if math.isnan(seconds) or seconds <= 0:
        raise ConfigError(f"{name}: must be a positive number of seconds, got {value!r}")
    return seconds


def check_count(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: expected a whole number, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {value}")


def check_headers(headers: object) -> tuple[tuple[str, str], ...]:
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
