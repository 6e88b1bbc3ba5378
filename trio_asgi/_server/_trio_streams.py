"""trio streams and listeners seen through anyio's interfaces.

The I/O layer is written once against anyio's ``ByteStream``; under trio,
anyio's own socket streams are thin wrappers over trio sockets. These adapters
let a trio program pass its own listeners (``trio.SocketListener``, an SSL
listener, an in-memory one in tests) and serve any ``trio.abc.Stream``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import anyio
import anyio.abc
import trio
from anyio.abc import SocketAttribute

from ._listeners import CAPACITY_ERRNOS

Address = tuple[str, int] | str


class Acceptor(Protocol):
    """What an accept loop needs: anyio's SocketListener has it, and so does TrioListener."""

    async def accept(self) -> anyio.abc.ByteStream: ...

    async def aclose(self) -> None: ...


class TrioByteStream(anyio.abc.ByteStream):
    """A ``trio.abc.Stream`` as an ``anyio.abc.ByteStream`` (errors mapped to anyio's)."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        local_address: Address | None = None,
        remote_address: Address | None = None,
    ) -> None:
        self.trio_stream = stream
        sock = getattr(stream, "socket", None)
        # In-memory streams (trio_asgi.testing) carry made-up addresses as attributes.
        local_address = local_address or getattr(stream, "local_address", None)
        remote_address = remote_address or getattr(stream, "remote_address", None)
        if isinstance(sock, trio.socket.SocketType):
            local_address = local_address or _address(sock.getsockname())
            try:
                remote_address = remote_address or _address(sock.getpeername())
            except OSError:
                remote_address = None
        self._local = local_address
        self._remote = remote_address

    async def receive(self, max_bytes: int = 65536) -> bytes:
        try:
            data = await self.trio_stream.receive_some(max_bytes)
        except trio.ClosedResourceError:
            raise anyio.ClosedResourceError from None
        except (trio.BrokenResourceError, OSError) as exc:
            raise anyio.BrokenResourceError from exc
        if not data:
            raise anyio.EndOfStream
        return bytes(data)

    async def send(self, item: bytes) -> None:
        try:
            await self.trio_stream.send_all(item)
        except trio.ClosedResourceError:
            raise anyio.ClosedResourceError from None
        except (trio.BrokenResourceError, OSError) as exc:
            raise anyio.BrokenResourceError from exc

    async def send_eof(self) -> None:
        if not isinstance(self.trio_stream, trio.abc.HalfCloseableStream):
            raise NotImplementedError("this trio stream cannot half-close")
        try:
            await self.trio_stream.send_eof()
        except trio.ClosedResourceError:
            raise anyio.ClosedResourceError from None
        except (trio.BrokenResourceError, OSError) as exc:
            raise anyio.BrokenResourceError from exc

    async def aclose(self) -> None:
        await self.trio_stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        attributes: dict[Any, Callable[[], Any]] = {}
        if self._local is not None:
            local = self._local
            attributes[SocketAttribute.local_address] = lambda: local
        if self._remote is not None:
            remote = self._remote
            attributes[SocketAttribute.remote_address] = lambda: remote
        return attributes


class TrioListener:
    """A ``trio.abc.Listener`` as an :class:`Acceptor`."""

    def __init__(self, listener: trio.abc.Listener[Any]) -> None:
        self.trio_listener = listener

    async def accept(self) -> anyio.abc.ByteStream:
        try:
            stream = await self.trio_listener.accept()
        except trio.ClosedResourceError:
            raise anyio.ClosedResourceError from None
        except OSError as exc:
            # Same shape as anyio's listeners: the errno is on __cause__.
            if exc.errno in CAPACITY_ERRNOS:
                raise anyio.BrokenResourceError from exc
            raise
        return TrioByteStream(stream)

    async def aclose(self) -> None:
        await self.trio_listener.aclose()

    def describe(self) -> str:
        sock = getattr(self.trio_listener, "socket", None)
        if isinstance(sock, trio.socket.SocketType):
            name = _address(sock.getsockname())
            if isinstance(name, str):
                return f"unix:{name}"
            host, port = name
            return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return getattr(self.trio_listener, "address", None) or repr(self.trio_listener)


def _address(raw: Any) -> Address:
    if isinstance(raw, tuple):
        return (str(raw[0]), int(raw[1]))
    return raw.decode() if isinstance(raw, bytes) else str(raw)
