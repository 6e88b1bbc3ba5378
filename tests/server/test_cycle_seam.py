"""The request cycle over a stream that is not HTTP/1.1: the seam HTTP/2 will plug into.

:class:`~trio_asgi._server._http_cycle.HTTPCycle` runs an app over any
:class:`~trio_asgi._server._request_stream.RequestStream` and returns how the
request ended; it never looks at keep-alive or framing. ``RecordingStream`` below
is a second, minimal implementation of that interface (what an HTTP/2 stream will
be: body chunks in, head/body/trailers out, no connection underneath), so these
tests show which calls the cycle makes and which result it returns for each way
an app can end.
"""

from __future__ import annotations

from typing import Any

import pytest

from trio_asgi import ASGIProtocolError, ClientDisconnected, Config
from trio_asgi._protocol._http11_request import RequestHead
from trio_asgi._server._http_cycle import HTTPCycle
from trio_asgi._server._request_stream import (
    APP_RAISED,
    APP_RAISED_MIDWAY,
    APP_RETURNED_EARLY,
    CLIENT_GONE,
    COMPLETED,
    CycleContext,
    CycleResult,
    RequestStream,
)
from trio_asgi._server._state import ServerState
from trio_asgi._types import ASGIApp, Receive, Scope, Send


class RecordingStream:
    """A RequestStream that records what the cycle asks of it (a body given up front)."""

    def __init__(self, body: list[bytes], *, gone: bool = False) -> None:
        self.request = RequestHead(
            method="POST",
            http_version="2",
            raw_target=b"/x",
            raw_path=b"/x",
            query_string=b"",
            headers=[],
            content_length=None,
            chunked=False,
            expects_continue=False,
            accepts_trailers=True,
        )
        self.accepts_trailers = True
        self._body = list(body)
        self.body_complete = False
        self.disconnected = gone
        self.broken = False
        self.response_complete = False
        self.answered = 0
        self.status = 0
        self.bytes_sent = 0
        self.body_received = 0
        self.response_headers: list[tuple[bytes, bytes]] = []
        self.app_running = False
        self.calls: list[tuple[Any, ...]] = []

    @property
    def nothing_sent(self) -> bool:
        return not any(call[0] in ("head", "body", "trailers") for call in self.calls)

    async def read_body(self) -> bytes | None:
        if self.disconnected:
            return None
        chunk = self._body.pop(0) if self._body else b""
        self.body_complete = not self._body
        return chunk

    async def send_head(
        self, status: int, headers: list[tuple[bytes, bytes]], *, trailers: bool
    ) -> None:
        if status == 599:
            raise ASGIProtocolError("refused before writing")
        if self.disconnected:
            raise ClientDisconnected("gone")
        self.status = status
        self.calls.append(("head", status, trailers))

    async def send_body(self, data: bytes, *, final: bool) -> None:
        self.calls.append(("body", data, final))
        self.bytes_sent += len(data)
        self.response_complete = final

    async def send_trailers(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.calls.append(("trailers", headers))
        self.response_complete = True

    async def send_error(self, status: int) -> bool:
        if not self.nothing_sent:
            return False
        self.calls.append(("error", status))
        self.answered = self.status = status
        self.response_complete = True
        return True

    async def wait_disconnected(self) -> None:
        self.calls.append(("wait",))


async def run(app: ASGIApp, stream: RequestStream) -> CycleResult:
    state = ServerState(app, Config(access_log=False))
    context = CycleContext(state=state, scheme="https", client=("10.0.0.1", 1), server=None)
    result = await HTTPCycle(context, stream).run()
    assert state.requests_in_flight == 0
    assert state.requests_served == 1
    assert not stream.app_running
    return result


async def test_a_streamed_response_with_trailers_completes() -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["http_version"])
        seen.append(await receive())
        seen.append(await receive())
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b"})
        await send({"type": "http.response.trailers", "headers": [(b"x", b"1")]})
        seen.append(await receive())

    stream = RecordingStream([b"12", b"34"])
    assert await run(app, stream) is COMPLETED
    assert seen == [
        "2",
        {"type": "http.request", "body": b"12", "more_body": True},
        {"type": "http.request", "body": b"34", "more_body": False},
        {"type": "http.disconnect"},  # the response is complete
    ]
    assert stream.calls == [
        ("head", 200, True),
        ("body", b"a", False),
        ("body", b"b", False),  # trailers follow: not the end yet
        ("trailers", [(b"x", b"1")]),
    ]


async def test_a_message_refused_before_writing_can_be_sent_again() -> None:
    # check -> perform -> commit: the refused start is not committed.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        with pytest.raises(ASGIProtocolError):
            await send({"type": "http.response.start", "status": 599})
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})

    stream = RecordingStream([])
    assert await run(app, stream) is COMPLETED
    assert stream.calls == [("head", 204, False), ("body", b"", True)]


@pytest.mark.parametrize(
    ("when", "expected", "calls"),
    [
        ("before-start", APP_RAISED, [("error", 500)]),
        ("after-start", APP_RAISED_MIDWAY, [("head", 200, False)]),
    ],
)
async def test_an_app_that_raises(when: str, expected: CycleResult, calls: list[Any]) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if when == "after-start":
            await send({"type": "http.response.start", "status": 200})
        raise RuntimeError("boom")

    stream = RecordingStream([])
    assert await run(app, stream) is expected
    assert stream.calls == calls


async def test_an_app_that_returns_early_gets_a_500_for_it() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        pass

    stream = RecordingStream([])
    assert await run(app, stream) is APP_RETURNED_EARLY
    assert stream.calls == [("error", 500)]


async def test_a_client_that_is_gone() -> None:
    received: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        received.append(await receive())
        await send({"type": "http.response.start", "status": 200})

    stream = RecordingStream([b"body"], gone=True)
    assert await run(app, stream) is CLIENT_GONE
    assert received == [{"type": "http.disconnect"}]
    assert stream.calls == []
