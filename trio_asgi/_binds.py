"""Where a server listens: ``host:port``, ``[v6]:port``, ``unix:PATH`` or ``fd://N``, parsed."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TypeAlias

from ._errors import ConfigError


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
