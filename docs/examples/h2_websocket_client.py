"""A WebSocket over HTTP/2 (RFC 8441) by hand: h2 opens the stream, wsproto frames it.

Serve ``websocket_echo:app`` (``python -m trio_asgi websocket_echo:app``), then
``python h2_websocket_client.py`` sends one message over HTTP/2 (prior knowledge on
the cleartext port) and prints the echo.
"""

from __future__ import annotations

import anyio
import h2.config
import h2.connection
import h2.events
from wsproto.frame_protocol import FrameProtocol, Opcode


async def echo_over_http2(host: str, port: int, text: str) -> tuple[bytes, str]:
    """Open ``/echo`` with an extended CONNECT; the status and the echo of ``text``."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding=None))
    conn.initiate_connection()
    frames = FrameProtocol(client=True, extensions=[])  # masks what it sends, as a client must
    async with await anyio.connect_tcp(host, port) as tcp:
        await tcp.send(conn.data_to_send())
        # RFC 8441 section 3: wait for the server's SETTINGS_ENABLE_CONNECT_PROTOCOL.
        while not conn.remote_settings.enable_connect_protocol:
            for _ in conn.receive_data(await tcp.receive()):
                pass
        stream_id = conn.get_next_available_stream_id()
        conn.send_headers(
            stream_id,
            [
                (b":method", b"CONNECT"),
                (b":protocol", b"websocket"),
                (b":scheme", b"http"),
                (b":path", b"/echo"),
                (b":authority", f"{host}:{port}".encode()),
                (b"sec-websocket-version", b"13"),
                (b"sec-websocket-protocol", b"echo.v1"),
            ],
        )
        conn.send_data(stream_id, bytes(frames.send_data(text)))
        await tcp.send(conn.data_to_send())
        status = b""
        while True:
            for event in conn.receive_data(await tcp.receive()):
                if isinstance(event, h2.events.ResponseReceived):
                    status = dict(event.headers)[b":status"]  # 200: accepted
                elif isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                    frames.receive_bytes(event.data)
                    for frame in frames.received_frames():
                        if frame.opcode is Opcode.TEXT:
                            assert isinstance(frame.payload, str)
                            return status, frame.payload
            await tcp.send(conn.data_to_send())


if __name__ == "__main__":
    print(anyio.run(echo_over_http2, "127.0.0.1", 8000, "hello over HTTP/2"))
