"""The ASGI type vocabulary shared by the whole package.

Messages stay plain dicts (that is what apps exchange with us); the
TypedDicts document the shapes the server builds and checks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Literal, TypeAlias, TypedDict

Message: TypeAlias = MutableMapping[str, Any]
Scope: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

#: ASGI 2 "double callable": ``app(scope)`` returns an instance awaited with receive/send.
ASGI2Instance: TypeAlias = Callable[[Receive, Send], Awaitable[None]]
ASGI2App: TypeAlias = Callable[[Scope], ASGI2Instance]

RawHeaders: TypeAlias = list[tuple[bytes, bytes]]
HeaderInput: TypeAlias = Iterable[tuple[bytes, bytes] | list[bytes]]


class ASGIVersions(TypedDict):
    version: str
    spec_version: str


class HTTPScope(TypedDict):
    type: Literal["http"]
    asgi: ASGIVersions
    http_version: str
    method: str
    scheme: str
    path: str
    raw_path: bytes
    query_string: bytes
    root_path: str
    headers: RawHeaders
    client: tuple[str, int] | None
    server: tuple[str, int | None] | None
    state: dict[str, Any]
    extensions: dict[str, dict[str, Any]]


class LifespanScope(TypedDict):
    type: Literal["lifespan"]
    asgi: ASGIVersions
    state: dict[str, Any]
