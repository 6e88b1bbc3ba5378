"""``wsgi.input`` pulls lazily; ``start_response``, ``write`` and ``close`` follow PEP 3333."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from trio_asgi._wsgi_io import ErrorStream, InputStream, Responder, call_app


class Source:
    """Hands out chunks one pull at a time, counting pulls."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.pulls = 0

    def __call__(self) -> tuple[bytes, bool]:
        self.pulls += 1
        chunk = self.chunks.pop(0) if self.chunks else b""
        return chunk, bool(self.chunks)


def test_read_pulls_only_what_it_needs() -> None:
    source = Source(b"abc", b"def", b"ghi")
    stream = InputStream(source)
    assert stream.read(2) == b"ab"
    assert source.pulls == 1
    assert stream.read(2) == b"cd"
    assert source.pulls == 2
    assert stream.read() == b"efghi"
    assert stream.read(5) == b""
    assert stream.read() == b""


def test_readline_across_chunks_and_limits() -> None:
    stream = InputStream(Source(b"ab", b"c\nde", b"", b"f\ng"))
    assert stream.readline() == b"abc\n"
    assert stream.readline(1) == b"d"
    assert stream.readline() == b"ef\n"
    assert stream.readline() == b"g"
    assert stream.readline() == b""


def test_readlines_hint_and_iteration() -> None:
    assert InputStream(Source(b"a\nb\nc\n")).readlines(3) == [b"a\n", b"b\n"]
    assert list(InputStream(Source(b"a\n", b"b\nc"))) == [b"a\n", b"b\n", b"c"]


def test_empty_body() -> None:
    stream = InputStream(lambda: (b"", False))
    assert stream.read() == b""
    assert stream.readline() == b""
    assert stream.readlines() == []


def _fail(exc: Exception) -> None:
    raise exc


class Sink:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, bytes, bool]] = []

    def __call__(self, head: Any, body: bytes, more: bool) -> None:
        self.calls.append((head, body, more))


def test_write_then_iterable() -> None:
    sink = Sink()
    responder = Responder(sink)

    def app(environ: Any, start_response: Any) -> Any:
        write = start_response("201 Created", [("X-A", "1")])
        write(b"early")
        return iter([b"", b"late"])

    assert call_app(app, {}, responder) == (None, b"")
    assert sink.calls == [((201, [(b"x-a", b"1")]), b"early", True), (None, b"late", True)]


def test_a_list_ends_in_the_event_loop() -> None:
    """A list's last element is returned, not pushed: a one-element list costs no push."""
    for body, pushed in (([b"only"], []), ([b"a", b"", b"b"], [b"a"]), ([], [])):
        sink = Sink()

        def app(environ: Any, start_response: Any, body: list[bytes] = body) -> list[bytes]:
            start_response("200 OK", [])
            return body

        final = call_app(app, {}, Responder(sink))
        assert [call[1] for call in sink.calls] == pushed
        assert final[1] == (body[-1] if body else b"")
        assert (final[0] is None) == bool(pushed)


def test_head_waits_for_the_first_non_empty_chunk() -> None:
    """PEP 3333: a generator may call start_response late, or again with exc_info."""
    sink = Sink()

    def app(environ: Any, start_response: Any) -> Any:
        yield b""
        start_response("200 OK", [])
        try:
            _fail(ValueError("boom"))
        except ValueError:
            start_response("500 Internal Server Error", [("X-E", "1")], sys.exc_info())
        yield b"error page"

    call_app(app, {}, Responder(sink))
    assert sink.calls[0] == ((500, [(b"x-e", b"1")]), b"error page", True)


def test_exc_info_after_headers_reraises() -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [])
        yield b"partial"
        try:
            _fail(KeyError("late"))
        except KeyError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        yield b"never"

    with pytest.raises(KeyError, match="late"):
        call_app(app, {}, Responder(Sink()))


def test_start_response_twice_without_exc_info() -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        start_response("200 OK", [])
        return []

    with pytest.raises(RuntimeError, match="again"):
        call_app(app, {}, Responder(Sink()))


@pytest.mark.parametrize(
    ("status", "headers"),
    [("200", []), (200, []), ("200 OK", [("X", 1)]), ("200 OK", [("X", "é€")]), ("200 OK", ())],
)
def test_bad_status_or_headers(status: object, headers: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        Responder(Sink()).start_response(status, headers)  # type: ignore[arg-type]


class Closing:
    def __init__(self, chunks: list[Any], fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.closed = False

    def __iter__(self) -> Any:
        return iter(self.chunks)

    def close(self) -> None:
        self.closed = True


def test_close_is_called_when_sending_fails() -> None:
    """A client that left: the push raises, the iteration stops, close() runs."""
    result = Closing([b"a", b"b", b"c"])
    pushed: list[bytes] = []

    def push(head: Any, body: bytes, more: bool) -> None:
        pushed.append(body)
        raise ConnectionResetError

    def app(environ: Any, start_response: Any) -> Closing:
        start_response("200 OK", [])
        return result

    with pytest.raises(ConnectionResetError):
        call_app(app, {}, Responder(push))
    assert pushed == [b"a"]
    assert result.closed


def test_close_is_called_for_non_bytes_and_missing_start() -> None:
    for chunks, start in (([b"a", "text"], True), ([b"a"], False)):
        result = Closing(chunks)

        def app(
            environ: Any, start_response: Any, start: bool = start, result: Closing = result
        ) -> Closing:
            if start:
                start_response("200 OK", [])
            return result

        with pytest.raises((TypeError, RuntimeError)):
            call_app(app, {}, Responder(Sink()))
        assert result.closed


def test_error_stream_logs_lines(caplog: pytest.LogCaptureFixture) -> None:
    errors = ErrorStream()
    errors.write("one\ntw")
    errors.writelines(["o\n", "three"])
    errors.flush()
    assert [r.getMessage() for r in caplog.records if r.name == "trio_asgi.wsgi"] == [
        "one",
        "two",
        "three",
    ]
