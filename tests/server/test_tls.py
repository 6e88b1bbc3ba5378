"""TLS from the Config (``ssl_*`` options), on both backends, with trustme certificates.

Real clients over real sockets: httpx, the websockets client (wss), curl, and raw TLS
streams where a test needs to look at the handshake (ALPN, the certificate served).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
import trustme
import websockets.sync.client
from anyio.streams.tls import TLSAttribute, TLSStream

from tests.test_docs_examples import load_example
from trio_asgi import Config, ConfigError, Server
from trio_asgi._server._tls import ALPN_PROTOCOLS

pytestmark = pytest.mark.anyio

TIMEOUT = 10


@dataclass
class Certificates:
    """A CA and a certificate for 127.0.0.1 it issued, written to files."""

    ca: trustme.CA
    cert: trustme.LeafCert
    certfile: Path
    keyfile: Path
    ca_file: Path

    def client_context(self, *extra_cas: trustme.CA) -> ssl.SSLContext:
        context = ssl.create_default_context()
        for ca in (self.ca, *extra_cas):
            ca.configure_trust(context)
        return context

    def der(self) -> bytes:
        return ssl.PEM_cert_to_DER_cert(self.cert.cert_chain_pems[0].bytes().decode())


def write_certificates(directory: Path, ca: trustme.CA | None = None) -> Certificates:
    ca = ca or trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    directory.mkdir(parents=True, exist_ok=True)
    certfile, keyfile, ca_file = directory / "cert.pem", directory / "key.pem", directory / "ca.pem"
    certfile.write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(ca_file))
    return Certificates(ca, cert, certfile, keyfile, ca_file)


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    return write_certificates(tmp_path / "tls")


def tls_options(certs: Certificates, **more: Any) -> dict[str, Any]:
    return {"ssl_certfile": str(certs.certfile), "ssl_keyfile": str(certs.keyfile), **more}


async def scheme_app(scope: Any, receive: Any, send: Any) -> None:
    """Answers with the scope's scheme (HTTP), or echoes it then closes (WebSocket)."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["scheme"].encode()})
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": scope["scheme"]})
        await send({"type": "websocket.close"})


def https(server: Server) -> str:
    return f"https://{server.addresses[0]}"


async def open_tls(server: Server, context: ssl.SSLContext) -> TLSStream:
    host, _, port = server.addresses[0].rpartition(":")
    stream = await anyio.connect_tcp(host, int(port))
    try:
        return await TLSStream.wrap(
            stream, hostname=host, ssl_context=context, standard_compatible=False
        )
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise


async def get_over(stream: anyio.abc.ByteStream) -> bytes:
    """One keep-alive GET on an open stream; the whole response."""
    await stream.send(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    data = b""
    while not data.endswith(b"0\r\n\r\n"):  # the last chunk
        data += await stream.receive()
    return data


async def test_https_with_httpx_says_https_in_the_scope(
    run_server: Callable[..., Any], certs: Certificates
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with (
            run_server(scheme_app, **tls_options(certs)) as server,
            httpx.AsyncClient(verify=certs.client_context()) as client,
        ):
            response = await client.get(https(server))
    assert (response.status_code, response.text) == (200, "https")


async def test_alpn_offers_http11_and_tls_is_at_least_12(
    run_server: Callable[..., Any], certs: Certificates
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(scheme_app, **tls_options(certs, http2=False)) as server:
            context = certs.client_context()
            context.set_alpn_protocols(["h2", "http/1.1"])
            stream = await open_tls(server, context)
            try:
                assert stream.extra(TLSAttribute.alpn_protocol) == "http/1.1"
                assert stream.extra(TLSAttribute.tls_version) in ("TLSv1.2", "TLSv1.3")
                assert b" 200 OK" in await get_over(stream)
            finally:
                await stream.aclose()
    assert ALPN_PROTOCOLS == ("h2", "http/1.1")


async def test_a_client_below_the_minimum_version_is_refused(
    run_server: Callable[..., Any], certs: Certificates
) -> None:
    context = certs.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with anyio.fail_after(TIMEOUT):
        async with run_server(scheme_app, **tls_options(certs, ssl_min_version="TLSv1.3")) as srv:
            with pytest.raises((ssl.SSLError, anyio.EndOfStream, anyio.BrokenResourceError)):
                await open_tls(srv, context)
            # A TLS 1.3 client is served.
            async with httpx.AsyncClient(verify=certs.client_context()) as client:
                assert (await client.get(https(srv))).status_code == 200


async def test_wss_with_the_websockets_client(
    run_server: Callable[..., Any], certs: Certificates
) -> None:
    def talk(url: str) -> str:
        with websockets.sync.client.connect(url, ssl=certs.client_context()) as ws:
            message = ws.recv(timeout=TIMEOUT)
        assert isinstance(message, str)
        return message

    with anyio.fail_after(TIMEOUT):
        async with run_server(scheme_app, **tls_options(certs)) as server:
            scheme = await anyio.to_thread.run_sync(talk, f"wss://{server.addresses[0]}/")
    assert scheme == "wss"


async def test_curl_with_cacert(run_server: Callable[..., Any], certs: Certificates) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(scheme_app, **tls_options(certs)) as server:
            result = await anyio.run_process(
                ["curl", "--silent", "--show-error", "--cacert", str(certs.ca_file), https(server)]
            )
    assert result.stdout == b"https"


async def test_mtls_serves_a_client_with_a_certificate_and_refuses_one_without(
    run_server: Callable[..., Any], certs: Certificates, tmp_path: Path
) -> None:
    client_ca = trustme.CA()
    client_ca.cert_pem.write_to_path(str(tmp_path / "client-ca.pem"))
    options = tls_options(certs, ssl_ca_certs=str(tmp_path / "client-ca.pem"), ssl_cert_reqs=2)
    with_cert = certs.client_context()
    client_ca.issue_cert("client@example.com").configure_cert(with_cert)
    with anyio.fail_after(TIMEOUT):
        async with run_server(scheme_app, **options) as server:
            async with httpx.AsyncClient(verify=with_cert) as client:
                response = await client.get(https(server))
            assert (response.status_code, response.text) == (200, "https")
            async with httpx.AsyncClient(verify=certs.client_context()) as client:
                # TLS 1.3 finishes the client's side of the handshake before the server
                # checks the certificate: the refusal arrives as an alert on the read.
                with pytest.raises(httpx.TransportError):
                    await client.get(https(server))


async def test_reload_tls_serves_the_new_certificate_and_keeps_open_connections(
    run_server: Callable[..., Any], certs: Certificates
) -> None:
    new_ca = trustme.CA()
    context = certs.client_context(new_ca)
    with anyio.fail_after(TIMEOUT):
        async with run_server(scheme_app, **tls_options(certs)) as server:
            old = await open_tls(server, context)
            assert old.extra(TLSAttribute.peer_certificate_binary) == certs.der()
            new_certs = write_certificates(certs.certfile.parent, new_ca)  # same paths
            assert server.reload_tls()
            new = await open_tls(server, context)
            try:
                assert new.extra(TLSAttribute.peer_certificate_binary) == new_certs.der()
                assert b" 200 OK" in await get_over(new)
                assert b" 200 OK" in await get_over(old)  # the open connection goes on
            finally:
                await new.aclose()
                await old.aclose()


async def test_a_failed_reload_keeps_the_old_certificate(
    run_server: Callable[..., Any], certs: Certificates, caplog: pytest.LogCaptureFixture
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(scheme_app, **tls_options(certs)) as server:
            certs.keyfile.write_text("not a key")
            assert not server.reload_tls()
            stream = await open_tls(server, certs.client_context())
            try:
                assert stream.extra(TLSAttribute.peer_certificate_binary) == certs.der()
            finally:
                await stream.aclose()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("Cannot reload the TLS certificate; keeping the old one")


async def test_a_stalled_handshake_blocks_no_one_and_times_out(
    run_server: Callable[..., Any], certs: Certificates
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(scheme_app, **tls_options(certs, timeout_tls_handshake=1)) as srv:
            host, _, port = srv.addresses[0].rpartition(":")
            async with await anyio.connect_tcp(host, int(port)) as stalled:
                await stalled.send(b"\x16\x03\x01")  # the start of a ClientHello, no more
                async with httpx.AsyncClient(verify=certs.client_context()) as client:
                    assert (await client.get(https(srv))).text == "https"
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await stalled.receive()  # closed by the handshake deadline


async def test_plain_http_to_the_tls_port_gets_a_plain_400(
    run_server: Callable[..., Any], certs: Certificates, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_asgi")
    with anyio.fail_after(TIMEOUT):
        async with run_server(scheme_app, **tls_options(certs)) as server, httpx.AsyncClient() as c:
            response = await c.get(f"http://{server.addresses[0]}/")
    assert response.status_code == 400
    assert response.text == "The plain HTTP request was sent to HTTPS port.\r\n"
    lines = [r for r in caplog.records if r.name == "trio_asgi" and "TLS port" in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.DEBUG]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ssl_keyfile": "key.pem"}, "ssl_keyfile: only means something with ssl_certfile"),
        ({"ssl_certfile": "c.pem", "ssl_cert_reqs": 2}, "ssl_cert_reqs: checking client"),
        ({"ssl_certfile": "c.pem", "ssl_cert_reqs": 3}, "ssl_cert_reqs: must be 0 (none)"),
        ({"ssl_certfile": "c.pem", "ssl_min_version": "TLSv1.1"}, "ssl_min_version: 'TLSv1.1'"),
    ],
)
def test_tls_options_that_do_not_fit_are_config_errors(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Config(**options)


def test_files_that_do_not_load_are_one_line_config_errors(
    certs: Certificates, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"^ssl_certfile: cannot load '.*nope.pem': No such"):
        Server(scheme_app, Config(ssl_certfile=str(tmp_path / "nope.pem")))
    certs.keyfile.write_bytes(
        certs.cert.private_key_pem.bytes().replace(b"PRIVATE KEY", b"PRIVATE KEY")
    )
    other = trustme.CA().issue_cert("127.0.0.1")
    other.private_key_pem.write_to_path(str(certs.keyfile))  # a key of another cert
    with pytest.raises(ConfigError, match=r"^ssl_certfile: cannot load .*KEY_VALUES_MISMATCH"):
        Server(scheme_app, Config(**tls_options(certs)))
    with pytest.raises(ConfigError, match=r"^ssl_ciphers: 'NO-SUCH-CIPHER' selects no cipher"):
        Server(
            scheme_app,
            Config(**tls_options(write_certificates(tmp_path / "b")), ssl_ciphers="NO-SUCH-CIPHER"),
        )


def test_the_keyfile_password_stays_out_of_repr(certs: Certificates) -> None:
    config = Config(**tls_options(certs, ssl_keyfile_password="hunter2"))
    assert "hunter2" not in repr(config)


@pytest.mark.parametrize("anyio_backend", ["trio"])  # the example is a trio program
async def test_the_tls_how_to_example_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = load_example("tls_app")
    with anyio.fail_after(TIMEOUT):
        await example.main(tmp_path)
    assert capsys.readouterr().out == "200 Hello over https\n200 Hello over https\n"
