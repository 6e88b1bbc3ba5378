"""TLS for the sockets the server binds itself: the context, the handshake, reloading.

The handshake runs in the connection's own task under its own deadline
(``timeout_tls_handshake``), so a client that never finishes it holds only its own
task: the accept loop and every other connection go on. The stream it gives is
anyio's :class:`~anyio.streams.tls.TLSStream`, served by the generic transport (the
fast paths are for plain sockets).

Certificates reload without dropping anything: :meth:`TLSTerminator.reload` builds a
new context from the same files and swaps it in; handshakes that start afterwards use
it, connections already open keep the context they were made with. A reload that
fails (a half-written file, a wrong password) logs one line and keeps the old context.

A plain-HTTP request sent to the TLS port is answered, as nginx does, with a
plain-text 400 that says so, then closed; other failed handshakes are one debug line.
"""

from __future__ import annotations

import logging
import ssl
from typing import ClassVar, Final

import anyio
import anyio.abc
from anyio.streams.tls import TLSStream

from .._config import Config
from .._errors import ConfigError, one_line
from ._connection import socket_addresses
from ._proxy import read_proxy_header_before_tls
from ._transport import AnyioTransport

logger = logging.getLogger("trio_asgi")

#: Protocols offered in ALPN, most preferred first (without ``--http2``: HTTP/1.1 only).
ALPN_PROTOCOLS: Final[tuple[str, ...]] = ("h2", "http/1.1")

#: ``ssl_cert_reqs`` values, as Uvicorn numbers them (those of :class:`ssl.VerifyMode`).
CERT_REQS: Final[dict[int, ssl.VerifyMode]] = {
    0: ssl.CERT_NONE,
    1: ssl.CERT_OPTIONAL,
    2: ssl.CERT_REQUIRED,
}

_MIN_VERSIONS: Final[dict[str, ssl.TLSVersion]] = {
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}

#: What a plain-HTTP request to the TLS port gets (the wording nginx uses).
PLAIN_HTTP_ANSWER: Final = (
    b"HTTP/1.1 400 Bad Request\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 48\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b"The plain HTTP request was sent to HTTPS port.\r\n"
)
#: How long a client that sent plain HTTP to the TLS port gets to take the answer.
PLAIN_HTTP_ANSWER_TIMEOUT: Final = 1.0


class ServerTLSStream(TLSStream):
    """anyio's TLS stream, marked so the server knows the scheme is https/wss."""

    is_tls: ClassVar[bool] = True


def build_server_context(config: Config) -> ssl.SSLContext:
    """The server's SSL context for ``config``'s ``ssl_*`` options.

    TLS 1.2 at least (``ssl_min_version``), no compression (CRIME), no renegotiation
    (a client-triggered CPU sink), ALPN as :data:`ALPN_PROTOCOLS`.

    Raises:
        ConfigError: A file is missing or unreadable, the key does not match the
            certificate or its password is wrong, or the cipher string selects nothing.
    """
    if config.ssl_certfile is None:
        raise ConfigError("ssl_certfile: TLS needs a certificate file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _MIN_VERSIONS[config.ssl_min_version]
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols([p for p in ALPN_PROTOCOLS if config.http2 or p != "h2"])
    try:
        context.load_cert_chain(
            config.ssl_certfile, config.ssl_keyfile, config.ssl_keyfile_password
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"ssl_certfile: cannot load {config.ssl_certfile!r}: {_why(exc)}"
        ) from None
    context.verify_mode = CERT_REQS[config.ssl_cert_reqs]
    if config.ssl_ca_certs is not None:
        try:
            context.load_verify_locations(cafile=config.ssl_ca_certs)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"ssl_ca_certs: cannot load {config.ssl_ca_certs!r}: {_why(exc)}"
            ) from None
    if config.ssl_ciphers is not None:
        try:
            context.set_ciphers(config.ssl_ciphers)
        except ssl.SSLError:
            raise ConfigError(f"ssl_ciphers: {config.ssl_ciphers!r} selects no cipher") from None
    return context


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, ssl.SSLError):
        return exc.strerror
    return one_line(exc)


class TLSTerminator:
    """The TLS side of a server: the current context, handshakes, and reloads."""

    __slots__ = ("_config", "context")

    def __init__(self, config: Config) -> None:
        self._config = config
        #: The context new connections' handshakes use.
        self.context = build_server_context(config)

    @classmethod
    def for_config(cls, config: Config) -> TLSTerminator | None:
        """A terminator when ``config`` asks for TLS (``ssl_certfile``), else ``None``."""
        return None if config.ssl_certfile is None else cls(config)

    def reload(self) -> bool:
        """Load the certificate files again; new handshakes use them. False if that failed."""
        try:
            self.context = build_server_context(self._config)
        except ConfigError as exc:
            logger.error("Cannot reload the TLS certificate; keeping the old one: %s", exc)  # noqa: TRY400 - one line, no traceback
            return False
        logger.info("Reloaded the TLS certificate from %s", self._config.ssl_certfile)
        return True

    async def handshake(self, stream: anyio.abc.ByteStream) -> anyio.abc.ByteStream | None:
        """The TLS stream over ``stream``, or ``None`` (and ``stream`` closed) if it failed.

        Owns ``stream``: whatever happens, it is either returned wrapped or closed.
        """
        try:
            if self._config.proxy_protocol:  # the PROXY header comes before the handshake
                client, server = socket_addresses(stream)
                proxied = await read_proxy_header_before_tls(
                    stream, self._config, client=client, server=server
                )
                if proxied is None:
                    await anyio.aclose_forcefully(stream)
                    return None
                stream = proxied
            with anyio.move_on_after(_deadline(self._config.timeout_tls_handshake)):
                return await ServerTLSStream.wrap(
                    stream, server_side=True, ssl_context=self.context, standard_compatible=False
                )
            logger.debug("TLS handshake timed out; closing the connection")
        except ssl.SSLError as exc:
            if exc.reason == "HTTP_REQUEST":
                logger.debug("Plain HTTP request on the TLS port; answering 400")
                await _answer_plain_http(stream)
            else:
                logger.debug("TLS handshake failed: %s", one_line(exc))
        except (anyio.BrokenResourceError, anyio.EndOfStream, OSError) as exc:
            logger.debug("TLS handshake failed: the client went away (%s)", one_line(exc))
        except BaseException:
            await anyio.aclose_forcefully(stream)
            raise
        await anyio.aclose_forcefully(stream)
        return None


def _deadline(seconds: float | None) -> float:
    return float("inf") if seconds is None else seconds


async def _answer_plain_http(stream: anyio.abc.ByteStream) -> None:
    """Send the 400 and close as error replies do, lingering so no RST destroys it."""
    transport = AnyioTransport(stream)
    await transport.write_quietly(PLAIN_HTTP_ANSWER, PLAIN_HTTP_ANSWER_TIMEOUT)
    await transport.linger_close(PLAIN_HTTP_ANSWER_TIMEOUT)
