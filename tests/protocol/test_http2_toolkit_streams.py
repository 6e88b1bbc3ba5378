"""The sans-IO HTTP/2 core against the toolkit's interleaved request streams.

:func:`~trio_asgi.testing.strategies.h2_interleavings` draws several requests whose
frames go out interleaved; an h2 client writes them and the core, given the bytes
in any split, must report each request exactly as sent: its head, its body in
order, its trailers, on its own stream.
"""

from __future__ import annotations

import h2.config
import h2.connection
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_asgi._protocol._http2 import H2ServerConnection
from trio_asgi._protocol._http2_events import BodyEnded, BodyReceived, RequestReceived
from trio_asgi.testing.strategies import (
    H2Interleaving,
    h2_interleavings,
    request_fields,
    splits,
)


def client_bytes(interleaving: H2Interleaving) -> bytes:
    """What an h2 client writes for the interleaving (bodies fit the default windows)."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    progress = [0] * len(interleaving.requests)
    for index in interleaving.order:
        request = interleaving.requests[index]
        stream_id, step = 2 * index + 1, progress[index]
        progress[index] += 1
        last = progress[index] == request.steps
        if step == 0:
            fields = request_fields(request.method, request.path, request.headers)
            client.send_headers(stream_id, fields, end_stream=last)
        elif step <= len(request.body_pieces):
            client.send_data(stream_id, request.body_pieces[step - 1], end_stream=last)
        else:
            client.send_headers(stream_id, list(request.trailers), end_stream=True)
    return client.data_to_send()


@settings(max_examples=100, deadline=None)
@given(interleaving=h2_interleavings(max_streams=8), data=st.data())
def test_each_stream_is_reported_as_sent(interleaving: H2Interleaving, data: st.DataObject) -> None:
    wire = client_bytes(interleaving)
    server = H2ServerConnection()
    events = []
    for piece in data.draw(splits(wire, max_chunks=6), label="pieces"):
        events += server.receive_data(piece, 0.0)
    for index, request in enumerate(interleaving.requests):
        stream_id = 2 * index + 1
        mine = [e for e in events if getattr(e, "stream_id", None) == stream_id]
        head = mine[0]
        assert isinstance(head, RequestReceived)
        path, _, query = request.path.encode("ascii").partition(b"?")
        assert (head.head.method, head.head.raw_path, head.head.query_string) == (
            request.method,
            path,
            query,
        )
        assert all(field in head.head.headers for field in request.headers)
        body = b"".join(e.data for e in mine if isinstance(e, BodyReceived))
        assert body == request.body
        ends = [e for e in mine if isinstance(e, BodyEnded)]
        if head.end_stream:
            assert (request.body, request.trailers, ends) == (b"", (), [])
        else:
            assert [end.trailers for end in ends] == [request.trailers]
