"""WebSocket timing, backpressure and shutdown, in memory under a virtual clock, on both backends.

The real server runs on a :class:`~trio_asgi.testing._memory.MemoryListener`; the
client is the wsproto client of ``ws_helpers`` over the memory stream. Under the
virtual clock every timeout (ping interval and timeout, handshake, closing
handshake, write, graceful shutdown) is checked to the exact second without
waiting. A listener with a ``receive_window`` bounds each direction like a socket
buffer, which is what makes backpressure visible: a writer whose peer does not
read blocks, and two tasks writing one stream at once raise ``BusyResourceError``.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest
from memory_helpers import Running, make_config, now, running
from ws_helpers import EchoApp, WSClient, close_cleanly, open_websocket, upgrade_request
from wsproto.events import CloseConnection, Ping, Pong, TextMessage

from trio_asgi import ClientDisconnected
from trio_asgi._types import Message, Receive, Scope, Send
from trio_asgi.testing._virtual_clock import wait_all_tasks_blocked
from trio_asgi.testing._ws_frames import Frame, Opcode

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("virtual_clock")]


async def ws_connect(srv: Running, target: str = "/", **options: Any) -> WSClient:
    return await open_websocket(await srv.listener.connect(), target, **options)


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


# --- pings --------------------------------------------------------------------------------------


async def test_server_pings_on_the_interval_and_a_client_that_answers_stays() -> None:
    app = EchoApp()
    config = make_config(ws_ping_interval=20.0, ws_ping_timeout=5.0)
    async with running(app, config) as srv:
        client = await ws_connect(srv)
        t0 = now()
        for round_ in range(1, 4):
            event = await client.next_event()
            assert isinstance(event, Ping)
            assert now() == pytest.approx(t0 + round_ * 20.0)
            await client.send(event.response())
        await client.send_text("still here")
        assert await client.receive_message() == "still here"
        await close_cleanly(client)
        await app.done.wait()
    assert app.disconnect["code"] == 1000


async def test_missing_pong_closes_1011() -> None:
    app = EchoApp()
    config = make_config(ws_ping_interval=20.0, ws_ping_timeout=5.0)
    async with running(app, config) as srv:
        client = await ws_connect(srv)
        t0 = now()
        assert isinstance(await client.next_event(), Ping)
        assert now() == pytest.approx(t0 + 20.0)
        # No pong: the close comes when the ping timeout runs out, and the connection ends.
        assert await client.expect_close(reply=False) == (1011, "keepalive ping timeout")
        assert now() == pytest.approx(t0 + 25.0)
        await client.expect_eof()
        assert now() == pytest.approx(t0 + 25.0)
        await app.done.wait()
    assert app.disconnect == {
        "type": "websocket.disconnect",
        "code": 1011,
        "reason": "keepalive ping timeout",
    }


async def test_no_pings_when_the_interval_is_none() -> None:
    async with running(EchoApp(), make_config(ws_ping_interval=None)) as srv:
        client = await ws_connect(srv)
        t0 = now()
        with anyio.move_on_after(1000.0):
            event = await client.next_event()
            raise AssertionError(f"unexpected {event!r}")
        assert now() == pytest.approx(t0 + 1000.0)
        await close_cleanly(client)


# --- handshake and closing-handshake timeouts ---------------------------------------------------


async def test_handshake_timeout_is_http_500(caplog: pytest.LogCaptureFixture) -> None:
    cancelled: list[float] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        try:
            await anyio.sleep_forever()  # never accepts
        except anyio.get_cancelled_exc_class():
            cancelled.append(now())
            raise

    async with running(app, make_config(timeout_ws_handshake=7.0)) as srv:
        t0 = now()
        client = await ws_connect(srv)
        assert client.answer.status == 500
        assert now() == pytest.approx(t0 + 7.0)
        await client.expect_eof()
    assert cancelled == [pytest.approx(t0 + 7.0)]
    [record] = error_records(caplog)
    assert "did not accept or close within 7.0s" in record.getMessage()


async def test_closing_handshake_times_out_if_the_client_never_answers() -> None:
    disconnects: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        await send({"type": "websocket.close", "code": 4000, "reason": "done"})
        disconnects.append(await receive())

    async with running(app, make_config(timeout_ws_close=3.0)) as srv:
        client = await ws_connect(srv)
        await client.send_text("go")
        assert await client.expect_close(reply=False) == (4000, "done")
        t0 = now()
        await client.expect_eof()  # the server gave up on our answer
        assert now() == pytest.approx(t0 + 3.0)
    assert disconnects == [{"type": "websocket.disconnect", "code": 4000, "reason": "done"}]


async def test_close_right_after_accept_ends_as_soon_as_the_client_answers() -> None:
    # Regression: the reader was only started for an OPEN WebSocket, so a close sent
    # before it started left the client's answer unread until timeout_ws_close.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4001})

    async with running(app, make_config(timeout_ws_close=60.0)) as srv:
        client = await ws_connect(srv)
        t0 = now()
        assert await client.expect_close() == (4001, "")
        await client.expect_eof()
        assert now() == pytest.approx(t0)


async def test_write_timeout_when_the_client_stops_reading(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raised: list[tuple[float, BaseException]] = []
    disconnects: list[Message] = []
    app_done = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        t0 = now()
        try:
            await send({"type": "websocket.send", "bytes": b"x" * 200_000})
        except OSError as exc:
            raised.append((now() - t0, exc))
        disconnects.append(await receive())
        app_done.set()

    async with running(app, make_config(timeout_write=5.0), receive_window=1024) as srv:
        client = await ws_connect(srv)
        await app_done.wait()  # the client reads nothing meanwhile
        await client.read_until_eof()
    [(waited, exc)] = raised
    assert waited == pytest.approx(5.0)
    assert isinstance(exc, ClientDisconnected)
    assert disconnects == [{"type": "websocket.disconnect", "code": 1006, "reason": ""}]
    assert error_records(caplog) == []


# --- backpressure -------------------------------------------------------------------------------


async def test_an_app_that_does_not_read_stops_the_server_reading() -> None:
    gate = anyio.Event()
    received: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await gate.wait()
        while (message := await receive())["type"] == "websocket.receive":
            received.append(message["text"])

    total = 300
    sent: list[int] = []
    config = make_config(ws_max_queue=4, ws_ping_interval=None)  # no pong could be read
    async with running(app, config, receive_window=4096) as srv:
        client = await ws_connect(srv)

        async def flood() -> None:
            for i in range(total):
                await client.send_text(f"{i:06d}" + "." * 100)
                sent.append(i)

        async with anyio.create_task_group() as nursery:
            nursery.start_soon(flood)
            await wait_all_tasks_blocked()
            stuck_at = len(sent)
            assert 0 < stuck_at < total  # the client's sends block: we stopped reading
            await anyio.sleep(100.0)  # time passes; nothing moves
            assert len(sent) == stuck_at
            # What sits unread is bounded: the queue (and one message on its way into
            # it), one read (at most a window) in the parser, and the window itself.
            assert stuck_at * 112 <= 5 * 112 + 2 * 4096
            gate.set()
        await close_cleanly(client)
    assert received == [f"{i:06d}" + "." * 100 for i in range(total)]


async def test_a_ping_flood_from_a_client_that_reads_nothing_does_not_grow_buffers() -> None:
    # Pongs obey backpressure: they wait for the client to read, and so does the reader.
    window = 4096
    total = 1500
    sent: list[int] = []
    async with running(EchoApp(), make_config(), receive_window=window) as srv:
        client = await ws_connect(srv)

        async def flood() -> None:
            for i in range(total):
                await client.ping(b"%06d" % i)
                sent.append(i)

        async with anyio.create_task_group() as nursery:
            nursery.start_soon(flood)
            await wait_all_tasks_blocked()
            stuck_at = len(sent)
            # 12-byte pings, 8-byte pongs. At most: a window of unread pings, one window's
            # worth being parsed (its pongs wait to be written), a window of unread pongs.
            assert 0 < stuck_at <= 2 * (window // 12) + window // 8 < total
            pongs: list[bytes] = []
            while len(pongs) < total:
                event = await client.next_event()
                assert isinstance(event, Pong), event
                pongs.append(event.payload)
        assert pongs == [b"%06d" % i for i in range(total)]
        await close_cleanly(client)


async def test_app_sends_pongs_and_a_close_never_race_on_the_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Peers raised BusyResourceError when an app send, a pong and a close raced. A small
    # window makes every write wait, and the memory stream raises on concurrent writers.
    count = 100

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})

        async def sender(name: str) -> None:
            try:
                for i in range(count):
                    await send({"type": "websocket.send", "text": f"{name}{i:03d}" + "." * 300})
            except ClientDisconnected:
                pass  # the close below won the race

        async with anyio.create_task_group() as nursery:
            nursery.start_soon(sender, "a")
            nursery.start_soon(sender, "b")
            await anyio.sleep(1.0)  # mid-stream, while both senders wait on the client
            await send({"type": "websocket.close", "code": 4000, "reason": "enough"})

    async with running(app, make_config(), receive_window=512) as srv:
        client = await ws_connect(srv)
        async with anyio.create_task_group() as nursery:

            async def pinger() -> None:
                for i in range(50):
                    await client.ping(b"%d" % i)
                    await anyio.sleep(0.01)

            nursery.start_soon(pinger)
            texts: list[str] = []
            while True:
                await anyio.sleep(0.05)  # a slow reader: writes keep blocking
                event = await client.next_event()
                if isinstance(event, TextMessage):
                    texts.append(event.data)
                elif isinstance(event, CloseConnection):
                    assert (event.code, event.reason) == (4000, "enough")
                    break
                else:
                    assert isinstance(event, Pong), event
            nursery.cancel_scope.cancel()
        assert isinstance(event, CloseConnection)
        await client.send(event.response())
        await client.expect_eof()
    assert error_records(caplog) == []
    assert 0 < len(texts) < 2 * count
    for name in "ab":  # each sender's messages in order
        mine = [int(t[1:4]) for t in texts if t[0] == name]
        assert mine == list(range(len(mine)))


async def test_a_close_cancelled_while_waiting_for_its_turn_is_still_sent() -> None:
    # Regression: the close frame counted as sent, but its write was cancelled while an
    # app send held the stream; the client never got it and saw the connection drop.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})

        async def send_big() -> None:
            await send({"type": "websocket.send", "bytes": b"b" * 10_000})

        async with anyio.create_task_group() as nursery:
            nursery.start_soon(send_big)
            await wait_all_tasks_blocked()  # that send waits on the client
            with anyio.move_on_after(1.0):
                await send({"type": "websocket.close", "code": 4000, "reason": "bye"})

    async with running(app, make_config(timeout_ws_close=60.0), receive_window=512) as srv:
        client = await ws_connect(srv)
        await anyio.sleep(2.0)  # the close's wait has been cancelled by now
        assert await client.receive_message() == b"b" * 10_000
        assert await client.expect_close() == (4000, "bye")
        t0 = now()
        await client.expect_eof()
        assert now() == pytest.approx(t0)


async def test_a_send_cancelled_midway_breaks_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Part of a frame may be on the wire: writing anything after it would corrupt the stream.
    outcome: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        with anyio.move_on_after(1.0) as scope_:
            await send({"type": "websocket.send", "bytes": b"x" * 100_000})
        outcome.append(scope_.cancelled_caught)
        try:
            await send({"type": "websocket.send", "text": "after"})
        except OSError as exc:
            outcome.append(exc)
        outcome.append(await receive())

    async with running(app, make_config(), receive_window=1024) as srv:
        client = await ws_connect(srv)
        await anyio.sleep(2.0)
        raw = await client.read_until_eof()
    assert outcome[0] is True
    assert isinstance(outcome[1], ClientDisconnected)
    assert outcome[2] == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
    assert b"after" not in raw
    assert len(raw) < 100_000  # a piece of the cancelled frame, and nothing else
    assert error_records(caplog) == []


# --- shutdown -----------------------------------------------------------------------------------


async def test_shutdown_closes_1012_and_returns_within_the_grace_period() -> None:
    # Peers left WebSockets open at shutdown, or waited forever for them.
    app = EchoApp()
    config = make_config(timeout_graceful_shutdown=5.0, timeout_ws_close=60.0)
    async with running(app, config) as srv:
        client = await ws_connect(srv)
        await client.send_text("hi")
        assert await client.receive_message() == "hi"
        assert srv.stats() == (1, 1, 0)  # the open session is in flight
        t0 = now()
        srv.server.shutdown()
        # The client never answers the close frame.
        assert await client.expect_close(reply=False) == (1012, "server shutdown")
        assert now() == pytest.approx(t0)
        await app.done.wait()
        assert now() == pytest.approx(t0)
        assert await srv.wait_stopped() == pytest.approx(t0 + 5.0)
        await client.expect_eof()
    assert app.disconnect == {
        "type": "websocket.disconnect",
        "code": 1012,
        "reason": "server shutdown",
    }
    assert srv.stats() == (0, 0, 1)


async def test_shutdown_with_a_client_that_answers_is_immediate() -> None:
    app = EchoApp()
    async with running(app, make_config(timeout_graceful_shutdown=5.0)) as srv:
        clients = [await ws_connect(srv) for _ in range(3)]
        await wait_all_tasks_blocked()
        assert srv.stats() == (3, 3, 0)
        t0 = now()
        srv.server.shutdown()
        for client in clients:
            assert await client.expect_close() == (1012, "server shutdown")
            await client.expect_eof()
        assert await srv.wait_stopped() == pytest.approx(t0)
    assert srv.stats() == (0, 0, 3)


async def test_shutdown_cancels_an_app_that_ignores_the_disconnect() -> None:
    cancelled: list[float] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await anyio.sleep_forever()  # never reads, never returns
        except anyio.get_cancelled_exc_class():
            cancelled.append(now())
            raise

    async with running(app, make_config(timeout_graceful_shutdown=4.0)) as srv:
        client = await ws_connect(srv)
        await wait_all_tasks_blocked()
        t0 = now()
        srv.server.shutdown()
        assert await client.expect_close() == (1012, "server shutdown")
        assert await srv.wait_stopped() <= t0 + 4.0
        await client.expect_eof()
    assert len(cancelled) == 1
    assert cancelled[0] <= t0 + 4.0


async def test_statistics_count_the_session_while_open() -> None:
    app = EchoApp()
    async with running(app, make_config()) as srv:
        assert srv.stats() == (0, 0, 0)
        client = await ws_connect(srv)
        await wait_all_tasks_blocked()
        assert srv.stats() == (1, 1, 0)
        await close_cleanly(client)
        await app.done.wait()
        await wait_all_tasks_blocked()
        assert srv.stats() == (0, 0, 1)


async def test_shutdown_during_the_handshake_closes_1012_once_accepted() -> None:
    gate = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await gate.wait()
        await send({"type": "websocket.accept"})
        message = await receive()
        assert message["type"] == "websocket.disconnect"
        assert message["code"] == 1012

    async with running(app, make_config(timeout_graceful_shutdown=30.0)) as srv:
        stream = await srv.listener.connect()
        async with anyio.create_task_group() as nursery:
            clients: list[WSClient] = []

            async def handshake() -> None:
                clients.append(await open_websocket(stream))

            nursery.start_soon(handshake)
            await wait_all_tasks_blocked()
            t0 = now()
            srv.server.shutdown()
            await wait_all_tasks_blocked()
            gate.set()
        [client] = clients
        assert client.answer.status == 101
        assert await client.expect_close() == (1012, "server shutdown")
        await client.expect_eof()
        assert await srv.wait_stopped() == pytest.approx(t0)


# --- the client goes away -----------------------------------------------------------------------


async def test_client_gone_during_the_handshake_makes_accept_raise_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await anyio.sleep(1.0)
        try:
            await send({"type": "websocket.accept"})
        except BaseException as exc:
            raised.append(exc)
            raise

    async with running(app, make_config()) as srv:
        stream = await srv.listener.connect()
        await stream.send_all(upgrade_request())
        await stream.aclose()
        await anyio.sleep(2.0)
        await wait_all_tasks_blocked()
        assert srv.stats() == (0, 0, 1)
    assert [type(exc) for exc in raised] == [ClientDisconnected]
    assert error_records(caplog) == []


async def test_a_frame_announcing_more_than_the_limit_closes_1009_before_its_payload() -> None:
    # Daphne buffered unbounded messages: here the frame header alone decides.
    app = EchoApp()
    async with running(app, make_config(ws_max_size=1000), receive_window=4096) as srv:
        client = await ws_connect(srv)
        header = Frame(Opcode.BINARY, b"", declared_length=50 * 1024 * 1024).data
        await client.send_raw(header + b"x" * 100)  # 100 bytes of a 50 MiB payload
        assert await client.expect_close(reply=False) == (1009, "message too big")
        await client.expect_eof()
        await app.done.wait()
    assert app.disconnect["code"] == 1009
