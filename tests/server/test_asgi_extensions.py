"""ASGI extensions over real sockets: pathsend, zerocopysend, early hints, the tls scope."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import trustme
from cryptography import x509

from tests.server.test_tls import Certificates, https, tls_options, write_certificates
from tests.test_docs_examples import load_example
from trio_asgi import ASGIProtocolError, ClientDisconnected

pytestmark = pytest.mark.anyio

TIMEOUT = 10
CONTENT = bytes(range(256)) * 1024  # 256 KiB: several slices


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(CONTENT)
    return path


def pathsend_app(path: Path, headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert "http.response.pathsend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "headers": headers or []})
        await send({"type": "http.response.pathsend", "path": str(path)})

    return app


async def test_pathsend_sends_the_file_with_its_length(
    run_server: Callable[..., Any], data_file: Path
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(pathsend_app(data_file)) as server, httpx.AsyncClient() as client:
            response = await client.get(f"http://{server.addresses[0]}/")
            again = await client.get(f"http://{server.addresses[0]}/")  # kept alive
    assert response.content == CONTENT == again.content
    # The head waits for the first body message, so the file's size is its length.
    assert response.headers["content-length"] == str(len(CONTENT))
    assert "transfer-encoding" not in response.headers


async def test_pathsend_without_a_length_on_a_raw_socket(
    run_server: Callable[..., Any], connect: Callable[..., Any], data_file: Path
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(pathsend_app(data_file)) as server:
            client = await connect(server)
            await client.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            raw = await client.read_until_eof()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"content-length: {len(CONTENT)}\r\n".encode() in head.lower() + b"\r\n"
    assert b"transfer-encoding" not in head.lower()
    assert body == CONTENT


async def test_pathsend_of_a_missing_file_without_a_length_is_a_whole_500(
    run_server: Callable[..., Any], connect: Callable[..., Any], tmp_path: Path
) -> None:
    """The head is held until the file is open: the client sees one whole 500, never a
    200 head followed by a closed connection."""
    app = pathsend_app(tmp_path / "missing")
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            raw = await client.read_until_eof()
            async with httpx.AsyncClient() as http:
                response = await http.get(f"http://{server.addresses[0]}/")
    assert raw.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert raw.endswith(b"\r\n\r\nInternal Server Error\n")
    assert b" 200 " not in raw
    assert response.status_code == 500
    assert response.text == "Internal Server Error\n"


async def test_pathsend_of_a_missing_file_is_a_500(
    run_server: Callable[..., Any], tmp_path: Path
) -> None:
    errors: list[str] = []
    inner = pathsend_app(tmp_path / "missing", [(b"content-length", b"10")])

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await inner(scope, receive, send)
        except ASGIProtocolError as exc:
            errors.append(str(exc))
            raise

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server, httpx.AsyncClient() as client:
            response = await client.get(f"http://{server.addresses[0]}/")
    assert response.status_code == 500
    assert response.headers["content-length"] == "0" or response.content  # a whole reply
    assert len(errors) == 1
    assert "cannot open" in errors[0]  # the file, not an unknown message type


async def test_pathsend_over_tls_reads_and_writes(
    run_server: Callable[..., Any], data_file: Path, tmp_path: Path
) -> None:
    certs = write_certificates(tmp_path / "tls")
    app = pathsend_app(data_file, [(b"content-length", str(len(CONTENT)).encode())])
    with anyio.fail_after(TIMEOUT):
        async with (
            run_server(app, **tls_options(certs)) as server,
            httpx.AsyncClient(verify=certs.client_context()) as client,
        ):
            response = await client.get(https(server))
    assert response.content == CONTENT


async def test_zerocopysend_with_offset_and_count(
    run_server: Callable[..., Any], data_file: Path
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert "http.response.zerocopysend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200})
        with data_file.open("rb") as file:
            await send(
                {
                    "type": "http.response.zerocopysend",
                    "file": file,
                    "offset": 1000,
                    "count": 70000,
                    "more_body": True,
                }
            )
            await send({"type": "http.response.body", "body": b"tail"})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server, httpx.AsyncClient() as client:
            response = await client.get(f"http://{server.addresses[0]}/")
    assert response.content == CONTENT[1000:71000] + b"tail"


async def test_pathsend_to_a_client_that_stops_reading_times_out(
    run_server: Callable[..., Any], tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (10 * 1024 * 1024))
    outcome: list[BaseException] = []
    done = anyio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        try:
            await send({"type": "http.response.pathsend", "path": str(big)})
        except ClientDisconnected as exc:
            outcome.append(exc)
            raise
        finally:
            done.set()

    with anyio.fail_after(TIMEOUT):
        async with run_server(app, timeout_write=0.5) as server:
            host, _, port = server.addresses[0].rpartition(":")
            sock = socket.create_connection((host, int(port)))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            try:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # and never read
                await done.wait()
            finally:
                sock.close()
    assert len(outcome) == 1
    assert "did not read" in str(outcome[0])


async def test_early_hints_before_a_200_seen_by_curl(run_server: Callable[..., Any]) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        links = [b"</style.css>; rel=preload; as=style", b"</app.js>; rel=preload; as=script"]
        await send({"type": "http.response.early_hint", "links": links})
        await send({"type": "http.response.early_hint", "links": [b"</x.png>; rel=preload"]})
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"page"})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            result = await anyio.run_process(
                ["curl", "--silent", "--include", f"http://{server.addresses[0]}/"]
            )
            http10 = await anyio.run_process(
                ["curl", "--silent", "--include", "--http1.0", f"http://{server.addresses[0]}/"]
            )
    out = result.stdout.replace(b"\r\n", b"\n")
    assert out.startswith(
        b"HTTP/1.1 103 Early Hints\nlink: </style.css>; rel=preload; as=style\n"
        b"link: </app.js>; rel=preload; as=script\n\n"
        b"HTTP/1.1 103 Early Hints\nlink: </x.png>; rel=preload\n\nHTTP/1.1 200 OK\n"
    )
    assert out.endswith(b"\n\npage")
    assert http10.stdout.startswith(b"HTTP/1.1 200 OK\r\n")  # no 103 for HTTP/1.0
    assert b"103" not in http10.stdout


async def test_the_tls_scope_with_a_client_certificate(
    run_server: Callable[..., Any], tmp_path: Path
) -> None:
    certs: Certificates = write_certificates(tmp_path / "tls")
    client_ca = trustme.CA()
    client_ca.cert_pem.write_to_path(str(tmp_path / "client-ca.pem"))
    options = tls_options(certs, ssl_ca_certs=str(tmp_path / "client-ca.pem"), ssl_cert_reqs=2)
    context = certs.client_context()
    client_cert = client_ca.issue_cert("client@example.com")
    client_cert.configure_cert(context)
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["extensions"])
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app, **options) as server:
            async with httpx.AsyncClient(verify=context) as client:
                await client.get(https(server))
            async with httpx.AsyncClient() as client:
                plain = await client.get("http://" + server.addresses[0], timeout=1)
    extensions = seen[0]
    assert "http.response.zerocopysend" not in extensions
    tls = extensions["tls"]
    assert tls["tls_version"] == 0x0304
    assert tls["server_cert"] == certs.cert.cert_chain_pems[0].bytes().decode()
    assert tls["client_cert_chain"] == [client_cert.cert_chain_pems[0].bytes().decode()]
    pem = client_cert.cert_chain_pems[0].bytes()
    expected_name = x509.load_pem_x509_certificate(pem).subject.rfc4514_string()
    assert tls["client_cert_name"] == expected_name  # as the cryptography package says
    assert tls["client_cert_error"] is None
    assert tls["cipher_suite"] in {0x1301, 0x1302, 0x1303}
    assert plain.status_code == 400  # plain HTTP on the TLS port: no scope at all


async def test_plain_connections_have_no_tls_extension(
    run_server: Callable[..., Any],
) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["extensions"])
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server, httpx.AsyncClient() as client:
            await client.get(f"http://{server.addresses[0]}/", headers={"te": "trailers"})
    assert set(seen[0]) == {
        "http.response.pathsend",
        "http.response.zerocopysend",
        "http.response.early_hint",
        "http.response.trailers",
    }


async def test_request_trailers_are_consumed_and_never_reach_the_app(
    run_server: Callable[..., Any],
) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["headers"])
        seen.append(await receive())
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"ok"})

    request = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n"
        b"5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n"
    )
    bad = request.replace(b"X-Sum: 42", b"X Sum: 42")
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            host, _, port = server.addresses[0].rpartition(":")
            for raw in (request, bad):
                async with await anyio.connect_tcp(host, int(port)) as client:
                    await client.send(raw + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    await client.send_eof()
                    answer = b""
                    try:
                        while True:
                            answer += await client.receive()
                    except anyio.EndOfStream:
                        pass
                if raw is request:
                    assert answer.count(b"HTTP/1.1 200 OK") == 2  # the next request too
                else:
                    assert answer.startswith(b"HTTP/1.1 400 ")
    headers, message = seen[0], seen[1]
    assert message == {"type": "http.request", "body": b"hello", "more_body": False}
    assert all(name != b"x-sum" for name, _ in headers)
    # The bad trailer: the app (called for a valid head) sees the body refused.
    assert seen[-1] == {"type": "http.disconnect"}


async def test_the_docs_example_app(
    run_server: Callable[..., Any], data_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FILE", str(data_file))
    example = load_example("extensions_app")
    with anyio.fail_after(TIMEOUT):
        async with run_server(example.app) as server, httpx.AsyncClient() as client:
            base = f"http://{server.addresses[0]}"
            whole = await client.get(base + "/file")
            part = await client.get(base + "/part")
            page = await client.get(base + "/")
            tls = await client.get(base + "/tls")
            hints = await anyio.run_process(["curl", "--silent", "--include", base + "/"])
    assert whole.content == CONTENT
    assert (part.status_code, part.content) == (206, CONTENT[100:200])
    assert page.status_code == 200
    assert tls.json() is None  # plain HTTP: no tls extension
    assert hints.stdout.startswith(b"HTTP/1.1 103 Early Hints\r\n")


async def test_pathsend_to_http10_and_head_gives_the_files_length(
    run_server: Callable[..., Any], data_file: Path
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(pathsend_app(data_file)) as server:
            host, _, port = server.addresses[0].rpartition(":")
            answers = []
            for request in (b"GET / HTTP/1.0\r\n\r\n", b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"):
                async with await anyio.connect_tcp(host, int(port)) as client:
                    await client.send(request)
                    answer = b""
                    with anyio.move_on_after(1):  # HEAD keeps the connection: stop at 1 s
                        while b"\r\n\r\n" not in answer or request.startswith(b"GET"):
                            try:
                                answer += await client.receive()
                            except anyio.EndOfStream:
                                break
                    answers.append(answer)
    http10, head = answers
    length = f"content-length: {len(CONTENT)}\r\n".encode()
    assert length in http10.lower()
    assert http10.endswith(b"\r\n\r\n" + CONTENT)
    assert length in head.lower()
    assert head.endswith(b"\r\n\r\n")
