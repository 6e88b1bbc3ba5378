"""HTTP/2 deadlines in virtual time, on both loops: the options that govern HTTP/1.1.

The preface under ``timeout_first_byte``, an open header block under
``timeout_request_head``, a connection with no stream under ``timeout_keep_alive``,
a stream's body silence under ``timeout_body_idle``. A raw ``h2`` client talks to the
real server over an in-memory connection; the clock jumps when every task waits.
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
from hyperframe.frame import HeadersFrame
from memory_helpers import Client, make_config, now, read_body, respond, running

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("virtual_clock")]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class H2Memory:
    """An h2 client on an in-memory connection; remembers when each event came."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.conn.initiate_connection()
        self.events: list[tuple[float, Any]] = []

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            await self.client.send(data)

    async def request(self, *, body: bytes | None = None, end: bool = True) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        headers = [(b":method", b"GET" if body is None else b"POST"), (b":path", b"/")]
        headers += [(b":scheme", b"http"), (b":authority", b"test")]
        self.conn.send_headers(stream_id, headers, end_stream=body is None)
        if body is not None:
            self.conn.send_data(stream_id, body, end_stream=end)
        await self.flush()
        return stream_id

    async def read_until(self, kind: type) -> float:
        """Read until an event of ``kind``; its time."""
        while True:
            data = await self.client.stream.receive_some(65536)
            assert data, "the server closed first"
            for event in self.conn.receive_data(data):
                self.events.append((now(), event))
                if isinstance(event, kind):
                    return now()
            await self.flush()

    async def closed_at(self) -> float:
        while await self.client.stream.receive_some(65536):
            pass
        return now()


async def test_a_preface_that_stops_midway_is_closed_at_the_first_byte_deadline() -> None:
    async with running(respond_app, make_config(timeout_first_byte=7.0)) as srv:
        client = await srv.connect()
        t0 = now()
        await client.send(PREFACE[:10])
        assert await client.expect_closed() == pytest.approx(t0 + 7.0)


async def test_an_idle_connection_gets_goaway_at_the_keep_alive_deadline() -> None:
    async with running(respond_app, make_config(timeout_keep_alive=5.0)) as srv:
        h2c = H2Memory(await srv.connect())
        await h2c.flush()
        await h2c.request()
        served = await h2c.read_until(h2.events.StreamEnded)
        assert await h2c.read_until(h2.events.ConnectionTerminated) == pytest.approx(served + 5.0)
        assert await h2c.closed_at() == pytest.approx(served + 5.0)


async def test_an_open_header_block_is_cut_at_the_request_head_deadline() -> None:
    config = make_config(timeout_request_head=3.0, timeout_keep_alive=100.0)
    async with running(respond_app, config) as srv:
        h2c = H2Memory(await srv.connect())
        await h2c.flush()
        await h2c.read_until(h2.events.SettingsAcknowledged)
        await h2c.flush()  # our ACK of its SETTINGS, before the header block opens
        t0 = now()
        # HEADERS without END_HEADERS: a CONTINUATION that never comes.
        await h2c.client.send(HeadersFrame(1, data=b"\x82", flags=["END_STREAM"]).serialize())
        at = await h2c.read_until(h2.events.ConnectionTerminated)
        assert at == pytest.approx(t0 + 3.0)
        assert await h2c.closed_at() == pytest.approx(t0 + 3.0)


async def test_body_silence_answers_408_on_the_stream_only() -> None:
    config = make_config(timeout_body_idle=4.0, timeout_keep_alive=100.0)
    async with running(echo_app, config) as srv:
        h2c = H2Memory(await srv.connect())
        await h2c.flush()
        t0 = now()
        stalled = await h2c.request(body=b"part", end=False)
        at = await h2c.read_until(h2.events.ResponseReceived)
        status = dict(h2c.events[-1][1].headers)[b":status"]
        assert (h2c.events[-1][1].stream_id, status, at) == (stalled, b"408", t0 + 4.0)
        other = await h2c.request(body=b"whole")
        await h2c.read_until(h2.events.StreamEnded)
        bodies = [e.data for _, e in h2c.events if isinstance(e, h2.events.DataReceived)]
        assert bodies[-1] == b"whole"
        assert other == stalled + 2


async def respond_app(scope: Any, receive: Any, send: Any) -> None:
    await respond(send)


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    body, _ = await read_body(receive)
    await respond(send, body=body)
