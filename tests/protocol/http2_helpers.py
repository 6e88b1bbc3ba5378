"""Drive the sans-IO HTTP/2 core with a real h2 client, or with raw frames (hyperframe)."""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events
import hpack
from hyperframe.frame import Frame, GoAwayFrame, HeadersFrame, RstStreamFrame

from trio_asgi._protocol._http2 import H2ServerConnection
from trio_asgi._protocol._http2_events import H2Event
from trio_asgi._protocol._http2_frames import PREFACE
from trio_asgi._protocol._http2_limits import H2Settings

REQUEST = [
    (b":method", b"GET"),
    (b":scheme", b"http"),
    (b":authority", b"example.com"),
    (b":path", b"/a%20b?x=1"),
]


def post(path: bytes = b"/upload", *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":authority", b"example.com"),
        (b":path", path),
        *extra,
    ]


class Pair:
    """A server core and an h2 client connected back to back (no sockets)."""

    def __init__(self, settings: H2Settings | None = None, **kwargs: Any) -> None:
        self.server = H2ServerConnection(settings, **kwargs)
        self.client = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.client.initiate_connection()
        self.now = 0.0
        self.server_events: list[H2Event] = []
        self.client_events: list[h2.events.Event] = []
        self.exchange()

    def to_server(self, data: bytes | None = None) -> list[H2Event]:
        data = self.client.data_to_send() if data is None else data
        events = self.server.receive_data(data, self.now) if data else []
        self.server_events += events
        return events

    def to_client(self) -> list[h2.events.Event]:
        data = self.server.data_to_send()
        events = self.client.receive_data(data) if data else []
        self.client_events += events
        return events

    def exchange(self) -> list[H2Event]:
        """Move bytes both ways until nothing is left; the server's events."""
        got: list[H2Event] = []
        while True:
            events = self.to_server()
            got += events
            answered = self.to_client()
            if not events and not answered and not self.client.data_to_send():
                return got

    def request(self, headers: list[tuple[bytes, bytes]], *, end_stream: bool = True) -> int:
        stream_id = self.client.get_next_available_stream_id()
        self.client.send_headers(stream_id, headers, end_stream=end_stream)
        return stream_id


class RawClient:
    """A client that writes frames by hand: what no well-behaved library would send."""

    def __init__(self, settings: H2Settings | None = None, **kwargs: Any) -> None:
        self.server = H2ServerConnection(settings, **kwargs)
        self.encoder = hpack.Encoder()
        self.now = 0.0
        self.events: list[H2Event] = []
        self.received = bytearray(self.server.data_to_send())
        self.send(PREFACE + _settings_frame())

    def send(self, data: bytes) -> list[H2Event]:
        events = self.server.receive_data(data, self.now)
        self.events += events
        self.received += self.server.data_to_send()
        return events

    def frames(self, *frames: Frame) -> list[H2Event]:
        return self.send(b"".join(f.serialize() for f in frames))

    def headers(
        self,
        stream_id: int,
        fields: list[tuple[bytes, bytes]] | None = None,
        flags: tuple[str, ...] = ("END_HEADERS", "END_STREAM"),
    ) -> HeadersFrame:
        frame = HeadersFrame(stream_id, flags=flags)
        frame.data = self.encoder.encode(fields or REQUEST)
        return frame

    def sent_frames(self) -> list[Frame]:
        """Every frame the server wrote so far, parsed."""
        return parse_frames(bytes(self.received))

    def goaway(self) -> GoAwayFrame | None:
        found = [f for f in self.sent_frames() if isinstance(f, GoAwayFrame)]
        return found[-1] if found else None

    def resets(self) -> dict[int, int]:
        return {
            f.stream_id: f.error_code for f in self.sent_frames() if isinstance(f, RstStreamFrame)
        }


def _settings_frame() -> bytes:
    from hyperframe.frame import SettingsFrame

    return SettingsFrame(0).serialize()


def parse_frames(data: bytes) -> list[Frame]:
    frames = []
    while len(data) >= 9:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9 : 9 + length]))
        frames.append(frame)
        data = data[9 + length :]
    return frames
