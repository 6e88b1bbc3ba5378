"""Coverage-guided fuzzing of the sans-IO core with atheris (``nox -s fuzz``).

One input drives three parsers, chosen by its first byte:

* the HTTP/1.1 server connection (:class:`HTTP11Connection`), fed the rest of the
  input in pieces whose sizes the input also chooses; every request it parses is
  "answered" with a 200 so pipelined requests after it are parsed too;
* the same input through two connections, one parsing heads with our parser and
  one with h11's reader (the reference): every event must be the same (the
  differential proof of ``tests/protocol/test_head_parser_differential.py``, led
  by coverage);
* the strict chunked-body decoder (:class:`ChunkedDecoder`);
* the WebSocket connection (:class:`WebSocketConnection`) right after an accepted
  handshake, with and without permessage-deflate.

Each may only return its events (``BadRequest`` being one of them) and must never
raise; the HTTP/1.1 buffer must stay within ``Limits.buffer_limit`` plus one read.
Usage: ``python fuzz/atheris_http11.py [corpus_dir] [-runs=N] [-max_total_time=S]``
(libFuzzer's options).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from trio_asgi._protocol import (
        _chunked,
        _h11_head,
        _head_parser,
        _http11,
        _websocket,
        _ws_handshake,
    )
    from trio_asgi._protocol._response import DefaultHeaders

LIMITS = _http11.Limits(max_header_size=1024, max_header_count=20, max_target_length=256)
DEFAULTS = DefaultHeaders(server_header=False, date_header=False, extra=())
#: The most bytes one read hands the connection (the I/O layer reads 64 KiB at most).
READ = 4096
HANDSHAKE = (
    b"GET / HTTP/1.1",
    [
        (b"host", b"x"),
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-extensions", b"permessage-deflate"),
    ],
)


def _pieces(fdp: atheris.FuzzedDataProvider) -> list[bytes]:
    pieces = []
    while fdp.remaining_bytes():
        pieces.append(fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, READ)))
    return pieces


def fuzz_http11(fdp: atheris.FuzzedDataProvider) -> None:
    _serve_pieces(_http11.HTTP11Connection(LIMITS, DEFAULTS), _pieces(fdp))


def fuzz_head_parsers(fdp: atheris.FuzzedDataProvider) -> None:
    pieces = _pieces(fdp)
    ours = _serve_pieces(
        _http11.HTTP11Connection(LIMITS, DEFAULTS, parse_head=_head_parser.parse_head), pieces
    )
    reference = _serve_pieces(
        _http11.HTTP11Connection(LIMITS, DEFAULTS, parse_head=_h11_head.parse_head_h11), pieces
    )
    assert ours == reference, (pieces, ours, reference)


def _serve_pieces(conn: _http11.HTTP11Connection, pieces: list[bytes]) -> list[object]:
    """Feed ``pieces`` then EOF, answering each request; the events, compared by value."""
    said: list[object] = []
    bound = LIMITS.buffer_limit + READ
    for piece in [*pieces, b""]:
        if piece and not conn.wants_data:
            continue  # the I/O layer stops reading: the piece stays in the socket
        conn.receive_data(piece)
        assert conn.buffered <= bound, f"buffered {conn.buffered} > {bound}"
        while True:
            event = conn.next_event()
            assert isinstance(
                event,
                _http11.RequestHead
                | _http11.BodyData
                | _http11.EndOfBody
                | _http11.BadRequest
                | _http11.ClientEOF
                | _http11.Signal,
            ), event
            # BadRequest's detail is wording (h11's or ours): only its status counts.
            said.append(event.status if isinstance(event, _http11.BadRequest) else repr(event))
            if isinstance(event, _http11.BadRequest):
                assert 400 <= event.status < 600, event
                return said
            if isinstance(event, _http11.ClientEOF):
                return said
            if event is _http11.PAUSED:
                conn.response_head(200, [(b"content-length", b"0")], close=False)
                conn.response_body(b"", final=True)
                if not conn.reusable:
                    return said
                conn.start_next_cycle()
            elif event is _http11.NEED_DATA:
                break
    return said


def fuzz_chunked(fdp: atheris.FuzzedDataProvider) -> None:
    decoder = _chunked.ChunkedDecoder(max_trailer_size=1024)
    buffer = bytearray()
    for piece in _pieces(fdp):
        buffer += piece
        try:
            consumed = decoder.scan(buffer, 0)
        except _chunked.ChunkedFramingError:
            return
        assert 0 <= consumed <= len(buffer)
        del buffer[:consumed]
        decoder.take_data()
        if decoder.done:
            return
        # Whatever is left unconsumed is an incomplete framing line: it is bounded.
        assert len(buffer) <= 4096 + 2, len(buffer)


def fuzz_websocket(fdp: atheris.FuzzedDataProvider) -> None:
    handshake = _ws_handshake.validate_handshake(b"GET", b"1.1", HANDSHAKE[1])
    assert isinstance(handshake, _ws_handshake.Handshake)
    ws = _websocket.WebSocketConnection(
        handshake, max_size=4096, per_message_deflate=fdp.ConsumeBool(), defaults=DEFAULTS
    )
    ws.accept()
    for piece in [*_pieces(fdp), b""]:
        ws.receive_data(piece)
        while (event := ws.next_event()) is not _websocket.NEED_DATA:
            if isinstance(event, _websocket.Message):
                assert len(event.data) <= 4096 * 4  # a str counts characters
            if isinstance(event, _websocket.ProtocolViolation):
                assert event.code in (1002, 1007, 1009), event
            if isinstance(
                event,
                _websocket.CloseReceived | _websocket.ConnectionLost | _websocket.ProtocolViolation,
            ):
                ws.pending_output()
                return
        ws.pending_output()


TARGETS = (fuzz_http11, fuzz_head_parsers, fuzz_chunked, fuzz_websocket)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    TARGETS[fdp.ConsumeIntInRange(0, len(TARGETS) - 1)](fdp)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
