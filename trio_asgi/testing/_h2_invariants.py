"""The HTTP/1.1 toolkit's invariants, for HTTP/2: checks that raise a clear AssertionError.

* every valid stream gets one complete response, and the app saw each request
  exactly as sent, once (:func:`assert_h2_requests_delivered`,
  :func:`assert_h2_responses_complete`): nothing smuggled, nothing lost;
* an attack gets the answer owed (:func:`assert_h2_attack_answered`), and no
  malformed request reaches the app;
* the server reads no more than a bound ahead of its apps while a client floods
  it (:func:`assert_h2_bounded_buffering`, :func:`max_h2_buffered_bytes`);
* other connections keep being served (:func:`assert_h2_still_serving`);
* no exception escapes a connection handler (:func:`~trio_asgi.testing.open_test_server`
  checks it on exit, as for HTTP/1.1).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import anyio

from .._config import Config
from .._server._http2_connection import h2_settings
from ._h2_client import TestH2Connection
from ._h2_frames import H2FrameType, ping_frame
from ._h2_requests import H2Attack, H2Request
from ._h2_responses import TestH2Response
from ._invariants import RecordedCall, RecordingApp
from ._test_server import TestServer
from ._virtual_clock import wait_all_tasks_blocked

#: The most bytes the server reads from a socket at once.
_READ_SIZE = 65536
_FRAME_HEADER = 9
#: Virtual seconds a write may wait before the server counts as having stopped reading.
_STALL = 1.0


def assert_h2_responses_complete(responses: Sequence[TestH2Response]) -> None:
    """Each stream was answered with a final status and ended (END_STREAM) before any reset.

    Raises:
        AssertionError: Naming the first stream that was not.
    """
    for response in responses:
        # A reset after END_STREAM (NO_ERROR: stop sending the body) leaves it complete.
        answered = response.complete and response.status >= 200
        assert answered, f"stream {response.stream_id} was not answered completely: {response!r}"


def _as_sent(request: H2Request) -> tuple[str, bytes, bytes, bytes]:
    path, _, query = request.path.encode("ascii").partition(b"?")
    return request.method, path, query, request.body


def _as_seen(call: RecordedCall) -> tuple[str, bytes, bytes, bytes]:
    scope = call.scope
    return str(scope["method"]), bytes(scope["raw_path"]), bytes(scope["query_string"]), call.body


def assert_h2_requests_delivered(app: RecordingApp, requests: Sequence[H2Request]) -> None:
    """The app was called once per request, each with its method, target, body and
    header fields exactly as sent (in any order: streams run concurrently).

    Raises:
        AssertionError: A request was lost, changed, duplicated or added.
    """
    sent = Counter(_as_sent(request) for request in requests)
    seen = Counter(_as_seen(call) for call in app.calls)
    assert sent == seen, (
        f"the app saw other requests than were sent: missing {sent - seen}, extra {seen - sent}"
    )
    for request in requests:
        matches = [
            call
            for call in app.calls
            if call.scope["raw_path"] == request.path.split("?")[0].encode()
        ]
        assert any(
            all(field in call.scope["headers"] for field in request.headers) for call in matches
        ), f"the header fields of {request!r} did not reach the app as sent"


def _observed(client: TestH2Connection) -> set[tuple[str, int]]:
    answers = {("reset", code) for code in client.resets().values()}
    goaway = client.goaway_received
    if goaway is not None and goaway.error_code:
        answers.add(("goaway", goaway.error_code))
    return answers


async def assert_h2_attack_answered(
    client: TestH2Connection, attack: H2Attack, app: RecordingApp | None = None
) -> None:
    """Send ``attack`` on a fresh connection; the server must answer as :attr:`H2Attack.answers`.

    If the answer owed is a connection error, the server must then close the
    connection; if it is a stream error, the connection must still answer a PING.
    With ``app`` (a :class:`RecordingApp`), no request on the path ``/bad/`` may
    have reached it, nor one on ``/badbody/`` as a complete request.

    Raises:
        AssertionError: Another answer, or none, or a malformed request in the app.
    """
    await client.send_raw(attack.data)
    await client.settle()
    closing = any(kind == "goaway" for kind, _ in attack.answers & _observed(client))
    if closing or client.goaway_received is not None:
        await client.read_until_closed()
    observed = _observed(client)
    assert observed & attack.answers, (
        f"{attack.kind}: expected one of {sorted(attack.answers)}, the server answered "
        f"{sorted(observed) or 'nothing'}"
    )
    if not any(kind == "goaway" for kind, _ in attack.answers):
        await _assert_answers_ping(client, attack.kind)
    if app is not None:
        _assert_nothing_malformed_reached(app, attack.kind)


def _assert_nothing_malformed_reached(app: RecordingApp, kind: str) -> None:
    paths = [bytes(call.scope["raw_path"]) for call in app.calls]
    assert b"/bad/" not in paths, f"{kind}: a malformed request reached the app: {paths}"
    completed = [call for call in app.calls if call.request_complete]
    assert not [call for call in completed if call.scope["raw_path"] == b"/badbody/"], (
        f"{kind}: a malformed body reached the app as a complete request"
    )


async def _assert_answers_ping(client: TestH2Connection, kind: str) -> None:
    opaque = b"stillup!"
    assert await client.send_raw(ping_frame(opaque)), f"{kind}: the server closed the connection"
    frames = await client.settle()
    assert any(f.type == H2FrameType.PING and f.payload == opaque for f in frames), (
        f"{kind}: after a stream error the connection no longer answers a PING"
    )


async def assert_h2_still_serving(server: TestServer, path: str = "/") -> TestH2Response:
    """A new HTTP/2 connection gets a complete answer to ``GET path``.

    Raises:
        AssertionError: It did not.
    """
    client = await server.connect_http2()
    response = await client.request("GET", path)
    assert_h2_responses_complete([response])
    await client.goaway()
    return response


def max_h2_buffered_bytes(config: Config) -> int:
    """The most request bytes an HTTP/2 connection may have read but not handed to apps.

    Unread body is bounded by the connection's receive window; a header block by the
    hard header-list bound; a frame in progress by the frame size; plus one read.
    """
    settings = h2_settings(config)
    return (
        settings.connection_window_size
        + settings.hard_header_list_size
        + settings.max_frame_size
        + _FRAME_HEADER
        + _READ_SIZE
    )


async def assert_h2_bounded_buffering(
    client: TestH2Connection,
    config: Config,
    flood: bytes,
    *,
    step: int = 16384,
    delivered: Callable[[], int] = lambda: 0,
) -> None:
    """Send ``flood`` raw in steps; the server must never have read more than
    :func:`max_h2_buffered_bytes` beyond what it delivered, until it closes the
    connection or stops reading (a write then waits: backpressure).

    Open ``client`` with a small ``receive_window`` to be a client that does not
    read: a server that keeps reading while its answers pile up fails the check.

    Raises:
        AssertionError: The server read more.
    """
    limit = max_h2_buffered_bytes(config)
    connection = client.connection
    for start in range(0, len(flood), step):
        with anyio.move_on_after(_STALL) as stalled:
            if not await client.send_raw(flood[start : start + step]):
                return  # the server closed the connection
        await wait_all_tasks_blocked()
        held = connection.bytes_taken_by_server - delivered()
        assert held <= limit, (
            f"the server read {held} bytes ahead of its apps, over the bound of {limit}"
        )
        if stalled.cancelled_caught:
            return  # the server stopped reading: the write waits (backpressure)
