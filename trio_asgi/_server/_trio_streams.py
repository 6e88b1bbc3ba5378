"""trio streams and listeners seen through anyio's interfaces.

The I/O layer is written once against anyio's ``ByteStream``; under trio,
anyio's own socket streams are thin wrappers over trio sockets. These adapters
let a trio program pass its own listeners (``trio.SocketListener``, an SSL
listener, an in-memory one in tests) and serve any ``trio.abc.Stream``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeAlias

import anyio
import anyio.abc
import trio

from ._listeners import CAPACITY_ERRNOS, describe_address

#: An address as anyio reports it: ``(host, port)`` for TCP, a path for a Unix socket.
Address: TypeAlias = tuple[str, int] | str


@contextmanager
def _anyio_errors(stream: TrioByteStream, action: str) -> Iterator[None]:
    """Translate trio's stream errors into anyio's, at this one boundary."""
    try:
        yield
    except trio.BusyResourceError as exc:
        raise anyio.BusyResourceError(action) from exc
    except trio.ClosedResourceError as exc:
        # anyio reports ClosedResourceError only for a stream closed through
        # itself; anything else (a send after send_eof, a stream closed under
        # us) is a broken connection, as on a real anyio socket stream.
        if stream.closed:
            raise anyio.ClosedResourceError from exc
        raise anyio.BrokenResourceError from exc
    except trio.BrokenResourceError as exc:
        raise anyio.BrokenResourceError from exc


def _same(value: object) -> object:
    return value


def _family_of(address: Address) -> socket.AddressFamily:
    if isinstance(address, str):
        return socket.AF_UNIX
    return socket.AF_INET6 if ":" in address[0] else socket.AF_INET


class TrioByteStream(anyio.abc.ByteStream):
    """Present a trio stream as an :class:`anyio.abc.ByteStream`, as a socket would look.

    ``receive()`` raises :exc:`anyio.EndOfStream` where trio returns ``b""``;
    trio's ``ClosedResourceError``, ``BrokenResourceError`` and
    ``BusyResourceError`` become anyio's. The
    :class:`anyio.abc.SocketAttribute` values ``family``, ``local_address``,
    ``remote_address`` (and ``local_port`` / ``remote_port`` for TCP
    addresses) come from the constructor, else from the trio stream's socket (a
    ``trio.SocketStream``, or an SSL stream over one), else from ``local_address`` /
    ``remote_address`` attributes of the stream (in-memory streams). An address that
    none of them knows is absent (the scope's ``client`` or ``server`` is then None),
    never made up; so is ``raw_socket``.

    Args:
        stream: The trio stream to wrap; ``send_eof()`` needs a
            :class:`trio.abc.HalfCloseableStream`.
        local_address: The server's address as the server would see it.
        remote_address: The peer's address as the server would see it.

    Example:
        >>> import trio.testing
        >>> left, right = trio.testing.memory_stream_pair()
        >>> server_side = TrioByteStream(right, remote_address=("10.0.0.7", 4242))
        >>> server_side.extra(anyio.abc.SocketAttribute.remote_port)
        4242
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        local_address: Address | None = None,
        remote_address: Address | None = None,
    ) -> None:
        self._stream = stream
        found_local, found_remote = _addresses_of(stream)
        self._local_address = local_address or found_local
        self._remote_address = remote_address or found_remote
        self._closed = False

    @property
    def is_tls(self) -> bool:
        """The trio stream is a TLS stream (``trio.SSLStream``): the scheme is https/wss."""
        return isinstance(self._stream, trio.SSLStream)

    @property
    def wrapped(self) -> trio.abc.Stream:
        """The trio stream underneath."""
        return self._stream

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called on this adapter."""
        return self._closed

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Return 1 to ``max_bytes`` bytes; raise :exc:`anyio.EndOfStream` at end-of-stream."""
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        with _anyio_errors(self, "reading from"):
            data = await self._stream.receive_some(max_bytes)
        if not data:
            raise anyio.EndOfStream
        return bytes(data)

    async def send(self, item: bytes) -> None:
        """Send all of ``item``; returns once the bytes are in the peer's window."""
        with _anyio_errors(self, "writing to"):
            await self._stream.send_all(item)

    async def send_eof(self) -> None:
        """Half-close the sending direction.

        Raises:
            NotImplementedError: The wrapped stream cannot half-close.
        """
        if not isinstance(self._stream, trio.abc.HalfCloseableStream):
            raise NotImplementedError("the wrapped trio stream cannot send EOF")
        with _anyio_errors(self, "writing to"):
            await self._stream.send_eof()

    async def aclose(self) -> None:
        """Close the wrapped stream (idempotent; a cancelled close still closes)."""
        self._closed = True
        await self._stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        attrs = anyio.abc.SocketAttribute
        extras: dict[Any, Callable[[], Any]] = {}
        for address, attribute, port in (
            (self._local_address, attrs.local_address, attrs.local_port),
            (self._remote_address, attrs.remote_address, attrs.remote_port),
        ):
            if address is None:
                continue
            extras[attribute] = partial(_same, address)
            extras.setdefault(attrs.family, partial(_family_of, address))
            if not isinstance(address, str):
                extras[port] = partial(_same, address[1])
        return extras


def _addresses_of(stream: trio.abc.Stream) -> tuple[Address | None, Address | None]:
    """The local and peer addresses of a trio socket stream (also under SSL), if any."""
    inner: Any = stream
    while isinstance(inner, trio.SSLStream):
        inner = inner.transport_stream
    sock = getattr(inner, "socket", None)
    if isinstance(sock, trio.socket.SocketType):
        try:
            return _address(sock.getsockname()), _address(sock.getpeername())
        except OSError:
            return _address(sock.getsockname()), None
    return getattr(inner, "local_address", None), getattr(inner, "remote_address", None)


class TrioListener:
    """A ``trio.abc.Listener`` as an :class:`~._accept.Acceptor`: one connection per call."""

    def __init__(self, listener: trio.abc.Listener[Any]) -> None:
        self.trio_listener = listener

    async def accept_batch(self) -> list[anyio.abc.ByteStream]:
        return [await self.accept()]

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
        listener: Any = self.trio_listener
        while isinstance(listener, trio.SSLListener):
            listener = listener.transport_listener
        sock = getattr(listener, "socket", None)
        if isinstance(sock, trio.socket.SocketType):
            return describe_address(sock.getsockname())
        return getattr(listener, "address", None) or repr(listener)


def _address(raw: Any) -> Address:
    if isinstance(raw, tuple):
        return (str(raw[0]), int(raw[1]))
    return raw.decode() if isinstance(raw, bytes) else str(raw)
