"""HTTP/2 over real sockets, on both loops: httpx (TLS and prior knowledge), raw h2 frames.

Each test drives a real client: httpx with ``http2=True``, or the ``h2`` library
as a raw client where a test needs frames of its own (many streams on one
connection, a window never granted, a reset, a GOAWAY).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import h2.config
import h2.connection
import h2.events
import h2.settings
import httpx
import pytest

from tests.server.test_tls import write_certificates
from trio_asgi import ClientDisconnected, Server

pytestmark = pytest.mark.anyio

TIMEOUT = 10


GET = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"x")]


class H2Client:
    """A raw HTTP/2 client over a TCP stream: frames of our choosing, events as h2 sees them."""

    def __init__(self, stream: anyio.abc.ByteStream, **settings: int) -> None:
        self.stream = stream
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.conn.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        self.conn.initiate_connection()
        self.bodies: dict[int, bytes] = {}
        self.ended: set[int] = set()
        self.resets: dict[int, int] = {}
        self.statuses: dict[int, bytes] = {}
        self.goaways: list[h2.events.ConnectionTerminated] = []
        #: Streams whose window the client never reopens.
        self.starved: set[int] = set()
        self._buffer = b""

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            await self.stream.send(data)

    async def request(self, path: bytes, *, body: bytes | None = None) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        headers = [(b":method", b"POST" if body is not None else b"GET"), (b":path", path)]
        headers += [(b":scheme", b"http"), (b":authority", b"localhost")]
        self.conn.send_headers(stream_id, headers, end_stream=body is None)
        if body is not None:
            self.conn.send_data(stream_id, body, end_stream=True)
        await self.flush()
        return stream_id

    async def pump(self) -> bool:
        """Read once and handle what came; False at EOF."""
        try:
            data = await self.stream.receive(65536)
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return False
        self._buffer += data
        for event in self._frames():
            if isinstance(event, h2.events.ResponseReceived):
                self.statuses[event.stream_id] = dict(event.headers)[b":status"]
            elif isinstance(event, h2.events.DataReceived):
                sid = event.stream_id
                self.bodies[sid] = self.bodies.get(sid, b"") + event.data
                if sid not in self.starved:
                    self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
            elif isinstance(event, h2.events.StreamEnded):
                self.ended.add(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self.resets[event.stream_id] = event.error_code
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.goaways.append(event)
                if event.error_code == 0:
                    # h2 closes on any GOAWAY; RFC 9113 section 6.8 lets the streams it
                    # names finish, which is what the test is about.
                    self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        await self.flush()
        return True

    def _frames(self) -> Any:
        """Feed h2 one whole frame at a time (so a GOAWAY is handled before what follows)."""
        while len(self._buffer) >= 9:
            end = 9 + int.from_bytes(self._buffer[:3], "big")
            if len(self._buffer) < end:
                return
            frame, self._buffer = self._buffer[:end], self._buffer[end:]
            yield from self.conn.receive_data(frame)

    async def until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            if not await self.pump():
                raise AssertionError("the server closed the connection")


async def open_h2(server: Server, **settings: int) -> H2Client:
    host, _, port = server.addresses[0].rpartition(":")
    client = H2Client(await anyio.connect_tcp(host, int(port)), **settings)
    await client.flush()
    return client


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    reply = f"{scope['http_version']} {scope['scheme']} {scope['method']} ".encode() + body
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": reply})


async def test_httpx_prior_knowledge(run_server: Callable[..., Any]) -> None:
    with anyio.fail_after(TIMEOUT):
        async with (
            run_server(echo_app) as server,
            httpx.AsyncClient(http1=False, http2=True) as client,
        ):
            base = f"http://{server.addresses[0]}"
            got = await client.get(f"{base}/")
            posted = await client.post(f"{base}/", content=b"x" * 200_000)
            async with httpx.AsyncClient() as http1:  # the same port serves HTTP/1.1
                plain = await http1.get(f"{base}/")
    assert (got.http_version, got.status_code, got.text) == ("HTTP/2", 200, "2 http GET ")
    assert posted.content == b"2 http POST " + b"x" * 200_000
    assert (plain.http_version, plain.text) == ("HTTP/1.1", "1.1 http GET ")


async def test_httpx_over_tls_negotiates_h2(run_server: Callable[..., Any], tmp_path: Path) -> None:
    certs = write_certificates(tmp_path / "tls")
    options = {"ssl_certfile": str(certs.certfile), "ssl_keyfile": str(certs.keyfile)}
    with anyio.fail_after(TIMEOUT):
        async with (
            run_server(echo_app, **options) as server,
            httpx.AsyncClient(http2=True, verify=certs.client_context()) as client,
        ):
            response = await client.get(f"https://{server.addresses[0]}/")
    assert (response.http_version, response.text) == ("HTTP/2", "2 https GET ")


async def test_a_slow_stream_never_delays_the_others(run_server: Callable[..., Any]) -> None:
    release = anyio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await open_h2(server)
            slow = await client.request(b"/slow")
            fast = [await client.request(b"/fast%d" % i) for i in range(50)]
            await client.until(lambda: all(sid in client.ended for sid in fast))
            assert slow not in client.ended
            release.set()
            await client.until(lambda: slow in client.ended)
            await client.stream.aclose()
    assert [client.bodies[sid] for sid in fast] == [b"/fast%d" % i for i in range(50)]
    assert client.bodies[slow] == b"/slow"


async def test_a_zero_window_stalls_only_its_stream_until_the_write_timeout(
    run_server: Callable[..., Any],
) -> None:
    outcome: dict[str, BaseException | None] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            size = 1 << 20 if scope["path"] == "/big" else 100_000
            await send({"type": "http.response.body", "body": b"x" * size})
            outcome[scope["path"]] = None
        except ClientDisconnected as exc:
            outcome[scope["path"]] = exc
            raise

    with anyio.fail_after(TIMEOUT):
        async with run_server(app, timeout_write=1.0) as server:
            client = await open_h2(server)
            client.conn.increment_flow_control_window(1 << 24)  # the connection: plenty
            client.starved.add(1)  # never reopen /big's window; /small's as it comes
            big = await client.request(b"/big")
            await client.until(lambda: len(client.bodies.get(big, b"")) >= 65535)
            small = await client.request(b"/small")
            await client.until(lambda: small in client.ended)
            assert big not in client.resets
            await client.until(lambda: big in client.resets)
            await client.stream.aclose()
    assert len(client.bodies[small]) == 100_000
    assert len(client.bodies[big]) == 65535  # nothing past the window
    assert outcome["/small"] is None
    assert isinstance(outcome["/big"], ClientDisconnected)


async def test_a_reset_cancels_its_app(run_server: Callable[..., Any]) -> None:
    started = anyio.Event()
    ended = anyio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.set()
        try:
            await receive()
            await receive()  # waits for the client to go
        finally:
            ended.set()

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await open_h2(server)
            stream_id = await client.request(b"/")
            await started.wait()
            client.conn.reset_stream(stream_id)
            await client.flush()
            await ended.wait()
            await client.stream.aclose()


async def test_graceful_shutdown_finishes_in_flight_streams(
    run_server: Callable[..., Any],
) -> None:
    started = anyio.Event()
    release = anyio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app, timeout_graceful_shutdown=5.0) as server:
            client = await open_h2(server)
            stream_id = await client.request(b"/")
            await started.wait()
            server.shutdown()
            await client.until(lambda: bool(client.goaways))
            release.set()
            await client.until(lambda: stream_id in client.ended)
            while await client.pump():
                pass  # the server closes once the stream is done
            await client.stream.aclose()
    assert client.bodies[stream_id] == b"done"


async def test_rapid_reset_cancels_each_app_then_goaway(run_server: Callable[..., Any]) -> None:
    running: set[int] = set()
    started = anyio.Event()
    finished = 0

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal finished
        running.add(id(scope))
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            finished += 1

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await open_h2(server)
            for _ in range(150):
                stream_id = client.conn.get_next_available_stream_id()
                client.conn.send_headers(stream_id, GET, end_stream=True)
                client.conn.reset_stream(stream_id)
            await client.flush()  # all at once, as an attacker would
            while await client.pump():
                pass
            await client.stream.aclose()
    assert client.goaways[0].error_code == 11  # ENHANCE_YOUR_CALM
    assert finished == len(running)  # every app that started was cancelled


async def test_receive_window_opens_only_as_the_app_reads(run_server: Callable[..., Any]) -> None:
    go = anyio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/upload":
            await go.wait()
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})

    total = 1 << 20
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await open_h2(server)
            # The server's connection window (1 MiB) is granted at the start.
            await client.until(lambda: client.conn.outbound_flow_control_window > 65535)
            upload = client.conn.get_next_available_stream_id()
            post = [(b":method", b"POST"), (b":path", b"/upload"), *GET[2:]]
            client.conn.send_headers(upload, post)
            for start in range(0, 65535, 16384):  # the whole initial window
                client.conn.send_data(upload, b"u" * min(16384, 65535 - start))
            await client.flush()
            left = client.conn.local_flow_control_window(upload)
            other = await client.request(b"/other", body=b"small")
            await client.until(lambda: other in client.ended)  # not held up by /upload
            assert client.conn.local_flow_control_window(upload) == left  # nothing granted
            go.set()
            sent = 65535
            while sent < total:
                room = min(client.conn.local_flow_control_window(upload), total - sent, 16384)
                if room:
                    client.conn.send_data(upload, b"u" * room, end_stream=sent + room == total)
                    sent += room
                    await client.flush()
                else:
                    assert await client.pump()
            await client.until(lambda: upload in client.ended)
            await client.stream.aclose()
    assert client.bodies[upload] == str(total).encode()
    assert client.bodies[other] == b"5"


async def test_pathsend_and_zerocopysend_over_http2(
    run_server: Callable[..., Any], tmp_path: Path
) -> None:
    # The extensions the connection advertises carry to its HTTP/2 streams: the file
    # goes out as DATA under the stream's window (a 300 kB file is more than one window).
    data = bytes(range(256)) * 1200
    path = tmp_path / "file.bin"
    path.write_bytes(data)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert "http.response.pathsend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if scope["path"] == "/zero":
            with path.open("rb") as file:
                await send(
                    {"type": "http.response.zerocopysend", "file": file.fileno(), "offset": 10,
                     "count": 1000}
                )  # fmt: skip
            return
        await send({"type": "http.response.pathsend", "path": str(path)})

    with anyio.fail_after(TIMEOUT):
        async with (
            run_server(app) as server,
            httpx.AsyncClient(http1=False, http2=True) as client,
        ):
            whole = await client.get(f"http://{server.addresses[0]}/")
            part = await client.get(f"http://{server.addresses[0]}/zero")
    assert (whole.http_version, whole.content) == ("HTTP/2", data)
    assert part.content == data[10:1010]


async def test_pathsend_of_a_missing_file_over_http2_is_a_whole_500(
    run_server: Callable[..., Any], tmp_path: Path
) -> None:
    """The HEADERS are held until the file is open: a missing file is a 500 response on
    the stream, not a 200 head and a reset."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(tmp_path / "missing")})

    with anyio.fail_after(TIMEOUT):
        async with (
            run_server(app) as server,
            httpx.AsyncClient(http1=False, http2=True) as client,
        ):
            response = await client.get(f"http://{server.addresses[0]}/")
            again = await client.get(f"http://{server.addresses[0]}/")  # the connection lives
    assert (response.http_version, response.status_code) == ("HTTP/2", 500)
    assert response.text == "Internal Server Error\n"
    assert again.status_code == 500


async def test_a_held_head_goes_out_when_the_app_waits_on_the_client_over_http2(
    run_server: Callable[..., Any],
) -> None:
    """A long poll: the app sends its head, then waits in receive(); the client sees the
    HEADERS while the app waits, and the body when it comes."""
    headers_seen = anyio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        assert (await receive())["type"] == "http.request"  # the whole (empty) body
        waited = await receive()  # until the client leaves, or the test lets go
        assert waited["type"] == "http.disconnect"

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = httpx.AsyncClient(http1=False, http2=True)
            async with client:
                url = f"http://{server.addresses[0]}/"
                async with client.stream("GET", url) as response:
                    assert response.status_code == 200  # the head came while the app waits
                    headers_seen.set()
    assert headers_seen.is_set()
