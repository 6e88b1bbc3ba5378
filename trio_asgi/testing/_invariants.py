"""Invariants of an HTTP server, as reusable checks that raise a clear AssertionError.

Each check states one thing that must hold whatever a client sends and whatever
the app does:

* every request gets exactly one response, in order (:func:`expect_one_response_each`);
* malformed input never reaches the app (:func:`assert_app_not_called`,
  :func:`assert_no_request_completed`), and the app is called once per
  well-formed request, so nothing was smuggled (:func:`assert_app_calls`);
* no exception escapes the connection handler (:func:`capture_server_errors`,
  :func:`assert_no_server_errors`; :func:`~trio_asgi.testing.open_test_server`
  checks this on exit by default);
* the bytes the server buffers stay bounded (:func:`assert_bounded_buffering`).

Replaying a failure: everything in :mod:`trio_asgi.testing` runs in one trio
thread, in memory, and under ``trio.testing.MockClock(autojump_threshold=0)`` time
is virtual, so a test's outcome depends only on what hypothesis drew. Hypothesis
stores each failing example in its database (``.hypothesis/``) and replays it
first on the next run; it also prints the example, and with
``settings(print_blob=True)`` a ``@reproduce_failure(...)`` decorator that replays
it anywhere. Turn the example's bytes into a plain regression test once found.
(The ``Date`` header is the one thing that reads the wall clock; don't compare it.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import trio

from .._config import Config
from .._protocol._http11 import Limits
from .._types import ASGIApp, Message, Receive, Scope, Send
from ._client_errors import ConnectionClosed, InvalidResponse
from ._connection import TestConnection
from ._responses import TestResponse
from ._server_errors import ServerErrors
from ._server_errors import capture_server_errors as capture_server_errors
from ._virtual_clock import wait_all_tasks_blocked

#: The most bytes the server reads from a socket at once.
_READ_SIZE = 65536


@dataclass
class RecordedCall:
    """One call of the app: its scope and the messages that went in and out.

    Attributes:
        scope: The scope.
        received: The messages ``receive()`` returned, in order.
        sent: The messages passed to ``send()``, in order (also those it refused).
    """

    scope: Scope
    received: list[Message] = field(default_factory=list)
    sent: list[Message] = field(default_factory=list)

    @property
    def body(self) -> bytes:
        """The request body bytes the app received."""
        return b"".join(
            m.get("body", b"") for m in self.received if m.get("type") == "http.request"
        )

    @property
    def request_complete(self) -> bool:
        """The app received the whole request (an ``http.request`` with no more body)."""
        return any(
            m.get("type") == "http.request" and not m.get("more_body", False) for m in self.received
        )


class RecordingApp:
    """Wrap an app and record every HTTP and WebSocket call (lifespan passes through).

    Args:
        app: The app to call.

    Example:
        >>> import trio, trio.testing
        >>> from trio_asgi.testing import open_test_server
        >>> async def hello(scope, receive, send):
        ...     await send({"type": "http.response.start", "status": 204})
        ...     await send({"type": "http.response.body"})
        >>> app = RecordingApp(hello)
        >>> async def main():
        ...     async with open_test_server(app, lifespan="off") as server:
        ...         client = await server.connect()
        ...         await client.send(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        ...         await client.send(b"GET /\\x00 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        ...         await expect_one_response_each(client, ["GET", "GET"])
        >>> trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        >>> [call.scope["path"] for call in app.calls]
        ['/']
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        #: One entry per HTTP request and WebSocket session, in call order.
        self.calls: list[RecordedCall] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        call = RecordedCall(scope)
        self.calls.append(call)

        async def recording_receive() -> Message:
            message = await receive()
            call.received.append(message)
            return message

        async def recording_send(message: Message) -> None:
            call.sent.append(message)
            await send(message)

        await self.app(scope, recording_receive, recording_send)

    @property
    def scopes(self) -> list[Scope]:
        """The scope of each call."""
        return [call.scope for call in self.calls]

    def clear(self) -> None:
        """Forget the calls recorded so far."""
        self.calls.clear()


def _describe(calls: Sequence[RecordedCall]) -> str:
    return ", ".join(
        f"{c.scope.get('method', c.scope['type'])} {c.scope.get('raw_path', b'')!r}" for c in calls
    )


def assert_app_not_called(app: RecordingApp, what: str = "malformed input") -> None:
    """The app was never called: ``what`` did not reach it.

    Raises:
        AssertionError: The app was called, with the scopes it got.
    """
    assert not app.calls, (
        f"{what} reached the app: {len(app.calls)} call(s): {_describe(app.calls)}"
    )


def assert_no_request_completed(app: RecordingApp, what: str = "a malformed body") -> None:
    """No call received a whole request: an app may have seen a valid head, but a
    malformed body never ends as if it were a valid one.

    Raises:
        AssertionError: A call got ``http.request`` with ``more_body=False``.
    """
    complete = [call for call in app.calls if call.request_complete]
    assert not complete, f"{what} reached the app as a complete request: {_describe(complete)}"


def assert_app_calls(app: RecordingApp, expected: int) -> None:
    """The app was called exactly ``expected`` times: once per well-formed request,
    so no request was smuggled in another's body and none was lost.

    Raises:
        AssertionError: Another number of calls, with their scopes.
    """
    assert len(app.calls) == expected, (
        f"expected {expected} app call(s), got {len(app.calls)}: {_describe(app.calls)}"
    )


def assert_no_server_errors(errors: ServerErrors) -> None:
    """No exception escaped a connection handler while ``errors`` was capturing.

    Raises:
        AssertionError: With the first such error's traceback.
    """
    errors.check()


async def expect_one_response_each(
    connection: TestConnection, methods: Sequence[str], *, allow_close: bool = False
) -> list[TestResponse]:
    """Read the answers to requests sent with ``methods``: exactly one complete response
    each, in order, and nothing more.

    After at least one response the server may close the connection (the requests
    pipelined behind are then unanswered, as HTTP/1.1 allows). A close before any
    response, or in the middle of one (a truncated response), fails unless
    ``allow_close``: for input a server may drop, or an app that fails mid-response.
    Once all tasks are blocked it also checks that the server wrote no extra bytes
    (a second response to one request, or a response to a request never sent).

    Args:
        connection: The client connection the requests were sent on.
        methods: The method of each request sent (HEAD responses have no body).
        allow_close: Accept a close without a complete response.

    Returns:
        The responses read, in order.

    Raises:
        AssertionError: A response is missing or truncated, extra bytes were written,
            or the server's bytes are not HTTP (:class:`InvalidResponse`).
    """
    responses: list[TestResponse] = []
    for method in methods:
        try:
            responses.append(await connection.read_response(method))
        except ConnectionClosed as closed:
            lost = closed
            break
    else:
        lost = None
    if lost is not None and not allow_close and (not responses or lost.partial is not None):
        head = f" after the head {lost.partial!r}" if lost.partial else ""
        raise AssertionError(
            f"request {len(responses) + 1} of {len(methods)} got no complete response: {lost}{head}"
        )
    if len(responses) < len(methods) or (responses and responses[-1].closes_connection):
        rest = await connection.read_until_eof()
        assert not rest, f"bytes after the last response: {rest[:200]!r}"
        return responses
    extra = await connection.unread_response_bytes()
    if extra:
        raise InvalidResponse(
            f"{len(methods)} request(s) got more than {len(responses)} response(s): "
            f"then {extra[:200]!r}"
        )
    return responses


def max_buffered_bytes(config: Config) -> int:
    """The most request bytes the server may have read but not yet handed to an app.

    It is the protocol's buffer limit plus one read: the server stops reading once
    its buffer holds :attr:`Limits.buffer_limit` bytes.
    """
    limits = Limits(
        max_header_size=config.max_header_size,
        max_header_count=config.max_header_count,
        max_target_length=config.max_target_length,
    )
    return limits.buffer_limit + _READ_SIZE


async def assert_bounded_buffering(
    connection: TestConnection,
    config: Config,
    flood: bytes,
    *,
    step: int = 16384,
    delivered: Callable[[], int] = lambda: 0,
) -> None:
    """Send ``flood`` in steps; until the server answers or closes, it must never hold
    more than :func:`max_buffered_bytes` of it.

    Use it with a huge pipeline, an endless head, or a body the app does not read: a
    server that buffers without bound fails it. Once the server answers (a 431, say)
    it may read and drop the rest, so the check stops there.

    Args:
        connection: A fresh connection.
        config: The server's configuration.
        flood: The bytes to send.
        step: How many bytes to send between checks.
        delivered: Bytes passed on so far (e.g. the body bytes a
            :class:`RecordingApp` received); they do not count as buffered.

    Raises:
        AssertionError: The server held more.
    """
    limit = max_buffered_bytes(config)
    for start in range(0, len(flood), step):
        try:
            await connection.send(flood[start : start + step])
        except trio.BrokenResourceError:
            return  # the server closed the connection
        await wait_all_tasks_blocked()
        if connection.statistics().unread_received or connection.eof:
            return  # the server answered
        held = connection.bytes_taken_by_server - delivered()
        assert held <= limit, (
            f"the server holds {held} unprocessed bytes without answering, "
            f"over the bound of {limit}"
        )
